// The queue's filters as data: read from and written to the page's URL (so a view can be
// shared), and turned into the API's query strings. No DOM here: Node's test runner imports it.
import { parseTs } from './format.js';
import { SEVERITIES, STATUSES } from './vocabulary.js';

const WINDOWS = Object.freeze({ '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 });
// Bars narrow enough to see the shape of the window; `auto` lets the server choose.
const CHART_BUCKET = Object.freeze({ '1h': '5m', '24h': '1h', '7d': '1h', all: 'auto', custom: 'auto' });
export const DEFAULT_FILTERS = Object.freeze({
  severity: Object.freeze([]), status: 'open', host_id: '', rule_id: '', search: '', window: '24h', since: '', until: '',
});

export const defaultFilters = () => ({ ...DEFAULT_FILTERS, severity: [] });

// `?key=value&...` without the empty values; lists are comma separated, as the API takes them.
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  const s = search.toString();
  return s ? `?${s}` : '';
}

// Filters from a page URL's query; anything unknown or malformed falls back to the default.
export function filtersFromQuery(query) {
  const params = new URLSearchParams(query);
  const f = defaultFilters();
  const sev = (params.get('severity') || '').split(',').map((s) => s.trim()).filter((s) => SEVERITIES.includes(s));
  f.severity = SEVERITIES.filter((s) => sev.includes(s));
  const status = params.get('status');
  if (status && (STATUSES.includes(status) || status === 'all')) f.status = status;
  f.host_id = params.get('host_id') || '';
  f.rule_id = params.get('rule_id') || '';
  f.search = params.get('search') || '';
  const win = params.get('window');
  if (win && (win in WINDOWS || win === 'all' || win === 'custom')) f.window = win;
  f.since = params.get('since') || '';
  f.until = params.get('until') || '';
  if ((f.since || f.until) && !params.get('window')) f.window = 'custom';
  if (f.window !== 'custom') { f.since = ''; f.until = ''; }
  return f;
}

// The page URL's query for these filters: defaults are left out, so the plain view is `/ui`.
export function queryFromFilters(f) {
  return qs({
    severity: f.severity.length ? f.severity : '',
    status: f.status === DEFAULT_FILTERS.status ? '' : f.status,
    host_id: f.host_id,
    rule_id: f.rule_id,
    search: f.search,
    window: f.window === DEFAULT_FILTERS.window ? '' : f.window,
    since: f.window === 'custom' ? f.since : '',
    until: f.window === 'custom' ? f.until : '',
  });
}

// A change to the filters; only a custom window keeps its own bounds.
export function patchFilters(f, patch) {
  const next = { ...f, ...patch };
  if (next.window !== 'custom') { next.since = ''; next.until = ''; }
  return next;
}

export function windowRange(f, now = Date.now()) {
  if (f.window in WINDOWS) return { since: new Date(now - WINDOWS[f.window]).toISOString(), until: '' };
  if (f.window === 'custom') return { since: f.since, until: f.until };
  return { since: '', until: '' };
}

// GET /signals for these filters (`extra`: limit, cursor).
export function signalListQuery(f, extra = {}, now = Date.now()) {
  const { since, until } = windowRange(f, now);
  return qs({
    severity: f.severity.length ? f.severity : '',
    status: f.status,
    host_id: f.host_id,
    rule_id: f.rule_id,
    search: f.search,
    since,
    until,
    ...extra,
  });
}

// GET /signals/volume for the chart of the same window.
export function volumeQuery(f, now = Date.now()) {
  const { since, until } = windowRange(f, now);
  return qs({ since, until, bucket: CHART_BUCKET[f.window] || 'auto' });
}

// Whether a signal with this status stays in the queue these filters show.
export const statusInView = (f, status) => f.status === 'all' || f.status === status;

// The filters in words, for an empty queue: "open, critical+high, host mbp-1".
export function describeFilters(f) {
  const parts = [];
  if (f.status !== 'all') parts.push(f.status);
  if (f.severity.length) parts.push(f.severity.join('+'));
  if (f.host_id) parts.push(`host ${f.host_id}`);
  if (f.rule_id) parts.push(`rule ${f.rule_id}`);
  if (f.search) parts.push(`“${f.search}”`);
  return parts;
}

// datetime-local inputs carry no zone; the console shows UTC everywhere, so they mean UTC.
export function isoToLocalInput(iso) {
  const ms = parseTs(iso);
  if (!Number.isFinite(ms)) return '';
  return new Date(ms).toISOString().slice(0, 19);
}

export function localInputToIso(value) {
  if (!value) return '';
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const ms = Date.parse(`${withSeconds}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : '';
}

// How the queue is shown, beside its filters: repeats grouped by rule and host, which
// silenced signals to show (`false` hides them, as the API does), and which page.
export const DEFAULT_VIEW = Object.freeze({ grouped: false, silenced: 'false', page: 'signals' });
const SILENCED = Object.freeze(['false', 'true', 'all']);

export function viewFromQuery(query) {
  const params = new URLSearchParams(query);
  const silenced = params.get('silenced');
  return {
    grouped: params.get('group') === '1',
    silenced: SILENCED.includes(silenced) ? silenced : DEFAULT_VIEW.silenced,
    page: params.get('page') === 'silences' ? 'silences' : DEFAULT_VIEW.page,
  };
}

// The page URL's query for filters and view together; defaults left out.
export function pageQuery(f, view) {
  const params = new URLSearchParams(queryFromFilters(f));
  if (view.grouped) params.set('group', '1');
  if (view.silenced !== DEFAULT_VIEW.silenced) params.set('silenced', view.silenced);
  if (view.page !== DEFAULT_VIEW.page) params.set('page', view.page);
  const s = params.toString();
  return s ? `?${s}` : '';
}

// What the view adds to GET /signals: which silenced signals, when not the API's default.
export const viewExtra = (view) => ({ silenced: view.silenced === DEFAULT_VIEW.silenced ? '' : view.silenced });

// GET /signals/groups for these filters: the same query as GET /signals.
export function groupListQuery(f, view, extra = {}, now = Date.now()) {
  return signalListQuery(f, { ...viewExtra(view), ...extra }, now);
}

// The `filter` of POST /signals/status that triages what a grouped view shows of a group.
export function triageFilter(f, view, now = Date.now()) {
  const { since, until } = windowRange(f, now);
  const filter = { status: f.status, silenced: view.silenced };
  if (f.severity.length) filter.severity = [...f.severity];
  for (const [key, value] of Object.entries({ search: f.search, since, until })) {
    if (value) filter[key] = value;
  }
  return filter;
}
