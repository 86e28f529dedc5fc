// An agent's timeline (GET /agents/{agent_id}) as the page shows it: where each interval sits
// on the strip, and how shares and windows read. No DOM here: Node's test runner imports it.
import { parseTs } from './format.js';

// The intervals clipped to [since, until], each with its place on the strip as shares (0-1) of
// the window; empty ones dropped.
export function stripSegments(intervals, since, until) {
  const start = parseTs(since);
  const span = parseTs(until) - start;
  if (!Array.isArray(intervals) || !(span > 0)) return [];
  const segments = [];
  for (const interval of intervals) {
    const from = Math.max(parseTs(interval.start), start);
    const to = Math.min(parseTs(interval.end), start + span);
    if (!(to > from)) continue;
    segments.push({ state: interval.state === 'online' ? 'online' : 'offline',
      x: (from - start) / span, width: (to - from) / span, from, to });
  }
  return segments;
}

// 0.973 -> "97.3 %"; never rounds a gap up to a clean 100 %.
export function fmtPercent(ratio) {
  if (typeof ratio !== 'number' || !Number.isFinite(ratio)) return '–';
  if (ratio >= 1) return '100 %';
  const tenths = Math.floor(ratio * 1000) / 10;
  return `${tenths.toFixed(tenths === Math.floor(tenths) ? 0 : 1)} %`;
}

// How long a window is, in the largest whole unit that fits: "7 d", "36 h", "45 min".
export function fmtSpan(since, until) {
  const seconds = (parseTs(until) - parseTs(since)) / 1000;
  if (!(seconds > 0)) return '–';
  if (seconds >= 2 * 86400) return `${Math.round(seconds / 86400)} d`;
  if (seconds >= 2 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.max(1, Math.round(seconds / 60))} min`;
}

// The version the agent runs now: the period with no end, else the latest.
export function currentVersion(versions) {
  if (!Array.isArray(versions) || !versions.length) return null;
  return versions.find((v) => v && v.until === null) || versions[versions.length - 1];
}
