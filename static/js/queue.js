// The signal queue: newest first, a page at a time, rows kept across refreshes (so scrolled-to
// rows and open details stay), the keyboard focus, and what an empty or failed list means.
// Selection and details decorate the rows through `on('row', ...)`; this module owns the list.
import { advice, api, isPlainObject } from './api.js';
import { $, el, setText, toast } from './dom.js';
import * as filters from './filters.js';
import { fmtAgo, fmtNum, fmtShort, fmtUtc, parseTs } from './format.js';
import { describeFilters, signalListQuery, statusInView, viewExtra } from './query.js';
import { SEVERITIES, STATUSES } from './vocabulary.js';

const PAGE_SIZE = 50;
export const MAX_LIMIT = 1000; // the most signals the API lists, or triages, in one call

let signals = [];
let nextCursor = null;
let loadSeq = 0; // an answer to an older load is dropped
let loadingMore = false;
let focusId = null;
const settled = new Set(); // triaged out of the current filter: dimmed until the next refresh
const rows = new Map();

// row(li, signal): a row is drawn; reset(): the list emptied; prune(keepIds): a refresh kept
// only these; rendered(); loaded({ reset }); open(id): a row was clicked; check(id, on, range):
// its checkbox; status(id): its status changed here.
const listeners = {
  row: [], reset: [], prune: [], rendered: [], loaded: [], open: [], check: [], status: [],
};

export function on(event, listener) {
  listeners[event].push(listener);
}

function emit(event, ...args) {
  for (const listener of listeners[event]) listener(...args);
}

export const list = () => signals;
export const signalById = (id) => signals.find((s) => s.signal_id === id);
export const rowFor = (id) => rows.get(id);
// The focused signal's id, if it is still in the list.
export const focusedId = () => (focusId && signalById(focusId) ? focusId : null);

export function clear() {
  signals = [];
  nextCursor = null;
  settled.clear();
  focusId = null;
  rows.clear();
  $('#queue').replaceChildren();
  emit('reset');
}

function setQueueState(kind, title, message, action) {
  const box = $('#queue-state');
  if (!kind) { box.hidden = true; box.className = 'queue-state'; box.replaceChildren(); return; }
  box.className = `queue-state is-${kind}`;
  const children = [];
  if (kind === 'loading') children.push(el('span', { class: 'spinner', 'aria-hidden': 'true' }));
  children.push(el('strong', { text: title }));
  if (message) children.push(el('span', { text: message }));
  if (action) children.push(el('div', {}, el('button', { type: 'button', class: 'btn btn-small', text: action.label, onclick: action.run })));
  box.replaceChildren(...children);
  box.hidden = false;
}

function showEmpty() {
  const f = filters.current();
  const onlyDefault = !f.severity.length && !f.host_id && !f.rule_id && !f.search && filters.currentView().silenced === 'false';
  const windowText = f.window === 'all' ? '' : f.window === 'custom' ? ' in the custom window' : ` in the last ${f.window}`;
  if (onlyDefault && f.status === 'open') {
    setQueueState('empty', `No open signals${windowText}.`, 'All quiet. Widen the time window or look at acknowledged and resolved signals.',
      f.window === 'all' ? { label: 'Show all statuses', run: () => filters.set({ status: 'all' }) } : { label: 'Show all time', run: () => filters.set({ window: 'all' }, { chart: true }) });
  } else {
    setQueueState('empty', `No signals match${windowText}.`, `Filters: ${describeFilters(f).join(', ') || 'none'}.`,
      { label: 'Clear filters', run: () => filters.resetTo({}, { chart: true }) });
  }
}

// A signal an active silence matched when it arrived: kept quiet, shown only when asked for.
function silencedBadge(signal) {
  if (signal.silence_id === null || signal.silence_id === undefined) return null;
  return el('span', { class: 'silenced-badge', title: `Matched silence #${signal.silence_id} when it arrived`, text: 'silenced' });
}

function buildRow(signal) {
  const id = signal.signal_id;
  const sev = SEVERITIES.includes(signal.severity) ? signal.severity : 'info';
  const ts = parseTs(signal.ts);
  const check = el('input', { type: 'checkbox', 'aria-label': 'Select signal', tabindex: '-1' });
  const status = el('span', { class: 'status-badge' });
  const row = el('div', { class: 'sig-row' },
    el('span', { class: 'sig-check' }, check),
    el('span', { class: 'sev-pill', text: String(signal.severity ?? 'unknown') }),
    el('time', { class: 'sig-time', datetime: String(signal.ts ?? ''), title: `${fmtUtc(ts)} UTC (${fmtAgo(ts)})`, text: fmtShort(ts) }),
    el('span', { class: 'sig-host', title: String(signal.host_id ?? ''), text: String(signal.host_id ?? '') }),
    el('span', { class: 'sig-rule', title: String(signal.rule_id ?? ''), text: String(signal.rule_id ?? '') }),
    el('span', { class: 'sig-title', title: String(signal.title ?? '') }, silencedBadge(signal), String(signal.title ?? '')),
    el('span', { class: 'sig-status' }, status));
  const li = el('li', { class: `sig sev-${sev}${signal.silence_id != null ? ' is-silenced' : ''}`, 'data-id': id }, row);
  li.refs = { check, status, row };

  check.addEventListener('click', (e) => {
    e.stopPropagation();
    emit('check', id, check.checked, e.shiftKey);
  });
  row.addEventListener('click', (e) => {
    if (e.target.closest('.sig-check')) { check.click(); return; }
    if (window.getSelection && String(window.getSelection()).length) return;
    setFocus(id, false);
    emit('open', id);
  });
  return li;
}

function updateRow(li, signal) {
  const id = signal.signal_id;
  const st = String(signal.status ?? '');
  li.refs.status.className = `status-badge status-${STATUSES.includes(st) ? st : 'unknown'}`;
  li.refs.status.textContent = st;
  li.classList.toggle('is-focused', focusId === id);
  li.classList.toggle('is-settled', settled.has(id));
  emit('row', li, signal);
}

export function refreshRow(id) {
  const signal = signalById(id);
  const row = rows.get(id);
  if (signal && row) updateRow(row, signal);
}

function render(freshIds) {
  const list = $('#queue');
  if (!signals.length) showEmpty();
  else setQueueState(null);

  let prev = null;
  const present = new Set();
  for (const signal of signals) {
    const id = signal.signal_id;
    present.add(id);
    let row = rows.get(id);
    if (!row) {
      row = buildRow(signal);
      rows.set(id, row);
      if (freshIds.has(id)) row.classList.add('is-new');
    }
    updateRow(row, signal);
    const expected = prev ? prev.nextSibling : list.firstChild;
    if (expected !== row) list.insertBefore(row, expected);
    prev = row;
  }
  for (const [id, row] of rows) {
    if (!present.has(id)) { row.remove(); rows.delete(id); }
  }

  const loaded = signals.length;
  setText('queue-meta', loaded ? `${fmtNum(loaded)}${nextCursor ? '+' : ''} shown · newest first` : '');
  $('#load-more').hidden = !nextCursor;
  setText('queue-end', loaded && !nextCursor ? `End of the list · ${fmtNum(loaded)} signal${loaded === 1 ? '' : 's'}` : '');
  emit('rendered');
}

// `reset` starts from the first page (new filters); otherwise everything already on screen is
// reloaded in place. `quiet`: a failed background refresh says nothing. False when it failed.
export async function load({ reset = false, quiet = false } = {}) {
  const seq = ++loadSeq;
  const previousIds = new Set(signals.map((s) => s.signal_id));
  let limit = PAGE_SIZE;
  const panel = $('#queue-panel');
  if (reset) {
    // The old rows stay, dimmed, until the new ones arrive: no flash on every filter click.
    panel.setAttribute('aria-busy', 'true');
    if (!signals.length) setQueueState('loading', 'Loading signals…');
    $('#load-more').hidden = true;
    setText('queue-end', '');
  } else {
    limit = Math.min(MAX_LIMIT, Math.max(PAGE_SIZE, signals.length));
  }
  const done = () => { if (seq === loadSeq) panel.removeAttribute('aria-busy'); };
  let data;
  try {
    data = await api('GET', `/signals${signalListQuery(filters.current(), { ...viewExtra(filters.currentView()), limit })}`);
  } catch (err) {
    done();
    if (seq !== loadSeq || err.status === 401) return false;
    if (reset) clear();
    if (reset || !signals.length) {
      setQueueState('error', 'Could not load signals', advice(err),
        { label: 'Retry', run: () => load({ reset: true }) });
    } else if (!quiet) {
      toast(`Refresh failed: ${err.message}`, true);
    }
    return false;
  }
  if (seq !== loadSeq) return true;
  done();
  if (reset) clear();
  const answer = (data && Array.isArray(data.signals) ? data.signals : []).filter((s) => isPlainObject(s) && typeof s.signal_id === 'string');
  const freshIds = reset ? new Set() : new Set(answer.filter((s) => !previousIds.has(s.signal_id)).map((s) => s.signal_id));
  if (!reset) {
    // Rows triaged out of the current filter leave on refresh; everything else is updated.
    settled.clear();
    const keep = new Set(answer.map((s) => s.signal_id));
    emit('prune', keep);
    if (focusId && !keep.has(focusId)) focusId = null;
  }
  signals = answer;
  nextCursor = data && typeof data.next_cursor === 'string' ? data.next_cursor : null;
  render(freshIds);
  emit('loaded', { reset });
  return true;
}

async function loadMore() {
  if (!nextCursor || loadingMore) return;
  const seq = loadSeq;
  loadingMore = true;
  const button = $('#load-more');
  button.disabled = true;
  button.textContent = 'Loading…';
  try {
    const data = await api('GET', `/signals${signalListQuery(filters.current(), { ...viewExtra(filters.currentView()), limit: PAGE_SIZE, cursor: nextCursor })}`);
    if (seq !== loadSeq) return;
    const known = new Set(signals.map((s) => s.signal_id));
    const more = (Array.isArray(data.signals) ? data.signals : []).filter((s) => isPlainObject(s) && !known.has(s.signal_id));
    signals = signals.concat(more);
    nextCursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
    render(new Set());
  } catch (err) {
    if (err.status !== 401) toast(`Could not load more: ${err.message}`, true);
  } finally {
    loadingMore = false;
    button.disabled = false;
    button.textContent = 'Load more';
  }
}

function setFocus(id, scroll = true) {
  const previous = focusId;
  focusId = id;
  if (previous && previous !== id) refreshRow(previous);
  if (id) {
    refreshRow(id);
    const row = rows.get(id);
    if (row && scroll) row.querySelector('.sig-row').scrollIntoView({ block: 'nearest' });
  }
}

// j/k: the next or previous row; past the last loaded row, the next page.
export function moveFocus(delta) {
  if (!signals.length) return;
  let index = signals.findIndex((s) => s.signal_id === focusId);
  if (index < 0) index = delta > 0 ? 0 : signals.length - 1;
  else index = Math.min(signals.length - 1, Math.max(0, index + delta));
  setFocus(signals[index].signal_id);
  if (delta > 0 && index === signals.length - 1 && nextCursor) loadMore();
}

// A status changed by the analyst, shown at once; a row that no longer matches the filter
// stays, dimmed, until the next refresh.
export function applyStatus(ids, status) {
  for (const id of ids) {
    const signal = signalById(id);
    if (!signal) continue;
    signal.status = status;
    if (statusInView(filters.current(), status)) settled.delete(id); else settled.add(id);
    refreshRow(id);
    emit('status', id);
  }
}

export function init() {
  $('#load-more').addEventListener('click', loadMore);
}

// The grouped view shows groups instead: the list empties and its answers are dropped.
export function leave() {
  loadSeq += 1;
  $('#queue-panel').removeAttribute('aria-busy');
  clear();
}
