// The words the API uses for a signal's severity and triage status, most urgent first.
export const SEVERITIES = Object.freeze(['critical', 'high', 'medium', 'low', 'info']);
export const STATUSES = Object.freeze(['open', 'acknowledged', 'resolved']);
