// The words the API uses for a signal's severity and triage status, most urgent first.
export const SEVERITIES = Object.freeze(['critical', 'high', 'medium', 'low', 'info']);
export const STATUSES = Object.freeze(['open', 'acknowledged', 'resolved']);
// The kinds of agent connection problems (GET /agents/problems), as the console names them.
export const PROBLEM_KINDS = Object.freeze({
  tls_failure: 'TLS handshake failed',
  wrong_key: 'Wrong or revoked key',
  key_misuse: 'Key used for another host',
  context_shortened: 'Context shortened',
});
