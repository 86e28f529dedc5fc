// The queue's filter controls: severity, status, time window, host, rule and text, and the
// view beside them (grouped repeats, silenced signals, the silences page). They own the
// current filters and view, keep them in the URL and say when they change.
import { $, $$, el, toast } from './dom.js';
import { isoSeconds, parseTs } from './format.js';
import {
  DEFAULT_VIEW, defaultFilters, filtersFromQuery, isoToLocalInput, localInputToIso, pageQuery, patchFilters,
  viewFromQuery,
} from './query.js';
import { SEVERITIES } from './vocabulary.js';

const TYPING_PAUSE_MS = 350;
let filters = defaultFilters();
let view = { ...DEFAULT_VIEW };
const listeners = [];

export const current = () => filters;
export const currentView = () => view;

// `listener({ chart })` runs after every change; `chart` when the time window may differ.
export function onChange(listener) {
  listeners.push(listener);
}

function changed(chart) {
  for (const listener of listeners) listener({ chart });
}

export function showInControls() {
  const f = filters;
  for (const b of $$('#f-severity [data-sev]')) b.setAttribute('aria-pressed', String(f.severity.includes(b.dataset.sev)));
  for (const b of $$('#f-status [data-status]')) b.setAttribute('aria-pressed', String(b.dataset.status === f.status));
  for (const b of $$('#f-window [data-window]')) b.setAttribute('aria-pressed', String(b.dataset.window === f.window));
  $('#custom-window').hidden = f.window !== 'custom';
  $('#f-since').value = isoToLocalInput(f.since);
  $('#f-until').value = isoToLocalInput(f.until);
  if (document.activeElement !== $('#f-host')) $('#f-host').value = f.host_id;
  if (document.activeElement !== $('#f-rule')) $('#f-rule').value = f.rule_id;
  if (document.activeElement !== $('#f-search')) $('#f-search').value = f.search;
  for (const b of $$('#f-silenced [data-silenced]')) b.setAttribute('aria-pressed', String(b.dataset.silenced === view.silenced));
  $('#group-repeats').checked = view.grouped;
  $('#nav-silences').setAttribute('aria-pressed', String(view.page === 'silences'));
}

// `push`: a step the Back button should undo (opening a group), not a change of filter.
function writeToUrl(push = false) {
  const url = `${window.location.pathname}${pageQuery(filters, view)}`;
  if (url !== `${window.location.pathname}${window.location.search}`) {
    if (push) window.history.pushState(null, '', url);
    else window.history.replaceState(null, '', url);
  }
}

export function set(patch, { chart = false } = {}) {
  filters = patchFilters(filters, patch);
  showInControls();
  writeToUrl();
  changed(chart);
}

// Filters and view changed together; `push` keeps the previous state for the Back button.
export function setView(viewPatch, { filters: filterPatch = {}, push = false, chart = false } = {}) {
  filters = patchFilters(filters, filterPatch);
  view = { ...view, ...viewPatch };
  showInControls();
  writeToUrl(push);
  changed(chart);
}

// The default filters with `patch` applied (a card or a link that shows one view).
export function resetTo(patch, options) {
  set({ ...defaultFilters(), ...patch }, options);
}

function fillDatalist(selector, values) {
  const list = $(selector);
  const seen = new Set($$('option', list).map((o) => o.value));
  for (const v of values) {
    if (typeof v === 'string' && v && !seen.has(v)) {
      seen.add(v);
      list.append(el('option', { value: v }));
    }
  }
}

export const suggestHosts = (hosts) => fillDatalist('#host-options', hosts);
export const suggestRules = (rules) => fillDatalist('#rule-options', rules);

function applyCustomWindow() {
  const since = localInputToIso($('#f-since').value);
  const until = localInputToIso($('#f-until').value);
  if (since && until && parseTs(since) >= parseTs(until)) {
    toast('The start of the window must be before its end.', true);
    return;
  }
  set({ window: 'custom', since, until }, { chart: true });
}

function openCustomWindow() {
  // Start from the last 24 hours, unless the URL already held bounds.
  const until = Date.now();
  const patch = { window: 'custom' };
  if (!filters.since) patch.since = isoSeconds(until - 86400e3);
  if (!filters.until) patch.until = isoSeconds(until);
  filters = patchFilters(filters, patch);
  showInControls();
  $('#f-since').focus();
  writeToUrl();
  changed(true);
}

function debounced(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function bindTextFilter(selector, key) {
  const input = $(selector);
  const commit = () => {
    const value = input.value.trim();
    if (value !== filters[key]) set({ [key]: value });
  };
  input.addEventListener('input', debounced(commit, TYPING_PAUSE_MS));
  input.addEventListener('change', commit);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); commit(); }
  });
}

export function init() {
  filters = filtersFromQuery(window.location.search);
  view = viewFromQuery(window.location.search);
  $('#filters').addEventListener('submit', (e) => e.preventDefault());
  for (const b of $$('#f-severity [data-sev]')) {
    b.addEventListener('click', () => {
      const chosen = new Set(filters.severity);
      if (chosen.has(b.dataset.sev)) chosen.delete(b.dataset.sev); else chosen.add(b.dataset.sev);
      set({ severity: SEVERITIES.filter((s) => chosen.has(s)) });
    });
  }
  for (const b of $$('#f-status [data-status]')) {
    b.addEventListener('click', () => set({ status: b.dataset.status }));
  }
  for (const b of $$('#f-window [data-window]')) {
    b.addEventListener('click', () => {
      if (b.dataset.window === 'custom') openCustomWindow();
      else set({ window: b.dataset.window }, { chart: true });
    });
  }
  $('#f-custom-apply').addEventListener('click', applyCustomWindow);
  for (const id of ['#f-since', '#f-until']) {
    $(id).addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); applyCustomWindow(); } });
  }
  bindTextFilter('#f-host', 'host_id');
  bindTextFilter('#f-rule', 'rule_id');
  bindTextFilter('#f-search', 'search');
  $('#f-clear').addEventListener('click', () => resetTo({}, { chart: true }));
  for (const b of $$('#f-silenced [data-silenced]')) {
    b.addEventListener('click', () => setView({ silenced: b.dataset.silenced }));
  }
  $('#group-repeats').addEventListener('change', (e) => setView({ grouped: e.target.checked }));
  $('#nav-silences').addEventListener('click', () => setView({ page: view.page === 'silences' ? 'signals' : 'silences' }, { push: true }));

  window.addEventListener('popstate', () => {
    filters = filtersFromQuery(window.location.search);
    view = viewFromQuery(window.location.search);
    showInControls();
    changed(true);
  });
}
