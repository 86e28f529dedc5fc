// How values read on the page: counts, timestamps (the server's UTC with nanoseconds, or any
// RFC 3339 offset), relative times and durations. No DOM here: Node's test runner imports it.

const numbers = new Intl.NumberFormat('en-US');
export const fmtNum = (n) => (typeof n === 'number' && Number.isFinite(n) ? numbers.format(n) : '–');

// The server sends fixed-width UTC (`2026-11-03T22:22:07.120934551Z`); Date only keeps ms.
export function parseTs(value) {
  if (typeof value !== 'string') return NaN;
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/.exec(value);
  if (!m) return Date.parse(value);
  const ms = (m[3] || '').slice(0, 3).padEnd(3, '0');
  return Date.parse(`${m[1]}T${m[2]}.${ms}${m[4] || 'Z'}`);
}

const pad = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export function fmtUtc(ms, withSeconds = true) {
  if (!Number.isFinite(ms)) return '—';
  const d = new Date(ms);
  const time = withSeconds ? fmtClock(ms) : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time}`;
}

export function fmtShort(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '—';
  const d = new Date(ms);
  const today = new Date(now);
  if (d.getUTCFullYear() === today.getUTCFullYear() && d.getUTCMonth() === today.getUTCMonth()
      && d.getUTCDate() === today.getUTCDate()) return `today ${fmtClock(ms)}`;
  return `${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCDate())} ${fmtClock(ms)}`;
}

export function fmtAgo(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 45) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h ago`;
}

export function fmtSilent(ms, now = Date.now()) {
  const minutes = Math.max(0, Math.floor((now - ms) / 60000));
  if (minutes < 120) return `silent for ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `silent for ${hours} h ${minutes % 60} min`;
  return `silent for ${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// An agent's uptime; null when there is nothing worth showing.
export function fmtDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) return null;
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return `${m} min`;
}

export function fmtBucketLabel(ms, bucketSeconds) {
  const d = new Date(ms);
  if (bucketSeconds < 86400) return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

// RFC 3339 UTC to the second, the form the console puts into the URL.
export const isoSeconds = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function statusVerb(status) {
  return status === 'acknowledged' ? 'Acknowledged' : status === 'resolved' ? 'Resolved' : 'Reopened';
}

export function basename(path) {
  if (typeof path !== 'string' || !path) return '';
  const parts = path.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

// A process's argv as a shell would take it back: plain words bare, anything else quoted.
export function shellJoin(args) {
  return args.map((a) => {
    const s = typeof a === 'string' ? a : JSON.stringify(a);
    return /^[\w@%+=:,./-]+$/.test(s) ? s : JSON.stringify(s);
  }).join(' ');
}
