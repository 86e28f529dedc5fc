// The grouped queue: one row per rule and host with how often it fired and when last, newest
// first, a page at a time. A row opens into its signals; selected groups are triaged whole
// (what the view shows of each) from their own bulk bar.
import { advice, api, isPlainObject } from './api.js';
import * as cards from './cards.js';
import { $, $$, el, setText, toast } from './dom.js';
import * as filters from './filters.js';
import { fmtAgo, fmtNum, fmtShort, fmtUtc, parseTs, statusVerb } from './format.js';
import { describeFilters, groupListQuery, triageFilter } from './query.js';
import { SEVERITIES, STATUSES } from './vocabulary.js';

const PAGE_SIZE = 50;
const MAX_CALLS_PER_GROUP = 20;

let groups = [];
let nextCursor = null;
let loadSeq = 0;
const selected = new Set(); // keys of selected groups

const keyOf = (g) => JSON.stringify([g.rule_id, g.host_id]);
const byKey = (key) => groups.find((g) => keyOf(g) === key);

export function show(on) {
  $('#queue-panel').classList.toggle('is-grouped', on);
  if (!on) clear();
}

export function clear() {
  loadSeq += 1;
  groups = [];
  nextCursor = null;
  selected.clear();
  $('#groups').replaceChildren();
  setText('groups-end', '');
  $('#groups-more').hidden = true;
  updateBar();
}

function setState(kind, title, message, action) {
  const box = $('#groups-state');
  if (!kind) { box.hidden = true; box.replaceChildren(); return; }
  box.className = `queue-state is-${kind}`;
  box.replaceChildren(...[
    kind === 'loading' ? el('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
    el('strong', { text: title }),
    message ? el('span', { text: message }) : null,
    action ? el('div', {}, el('button', { type: 'button', class: 'btn btn-small', text: action.label, onclick: action.run })) : null,
  ].filter(Boolean));
  box.hidden = false;
}

function statusWords(byStatus) {
  const counts = isPlainObject(byStatus) ? byStatus : {};
  return STATUSES.filter((s) => counts[s]).map((s) => `${fmtNum(counts[s])} ${s === 'acknowledged' ? 'ack' : s}`).join(' · ');
}

function buildRow(group) {
  const key = keyOf(group);
  const sev = SEVERITIES.includes(group.severity) ? group.severity : 'info';
  const last = parseTs(group.last_ts);
  const first = parseTs(group.first_ts);
  const count = Number(group.count) || 0;
  const check = el('input', { type: 'checkbox', 'aria-label': `Select ${group.rule_id} on ${group.host_id}` });
  check.checked = selected.has(key);
  const facts = [
    statusWords(group.by_status),
    group.silenced ? `${fmtNum(group.silenced)} silenced` : null,
    count > 1 ? `since ${fmtShort(first)}` : null,
  ].filter(Boolean).join(' · ');
  const row = el('div', { class: 'group-row', title: `Last seen ${fmtUtc(last)} UTC (${fmtAgo(last)}), first ${fmtUtc(first)} UTC` },
    el('span', { class: 'sig-check' }, check),
    el('span', { class: 'sev-pill', text: String(group.severity ?? 'unknown') }),
    el('time', { class: 'sig-time', datetime: String(group.last_ts ?? ''), text: fmtShort(last) }),
    el('span', { class: 'sig-host', title: String(group.host_id ?? ''), text: String(group.host_id ?? '') }),
    el('span', { class: 'sig-rule', title: String(group.rule_id ?? ''), text: String(group.rule_id ?? '') }),
    el('span', { class: 'group-count', title: `${fmtNum(count)} signal${count === 1 ? '' : 's'}`, text: `×${fmtNum(count)}` }),
    el('span', { class: 'group-facts', text: facts }));
  const li = el('li', { class: `sig group sev-${sev}${selected.has(key) ? ' is-selected' : ''}`, 'data-group': key }, row);
  check.addEventListener('click', (e) => {
    e.stopPropagation();
    if (check.checked) selected.add(key); else selected.delete(key);
    li.classList.toggle('is-selected', check.checked);
    updateBar();
  });
  row.addEventListener('click', (e) => {
    if (e.target.closest('.sig-check')) { check.click(); return; }
    open(group);
  });
  return li;
}

// Into the group's signals, in the same filters; Back returns to the groups.
function open(group) {
  filters.setView({ grouped: false }, { filters: { rule_id: group.rule_id, host_id: group.host_id }, push: true });
}

function render() {
  $('#groups').replaceChildren(...groups.map(buildRow));
  if (!groups.length) {
    const words = describeFilters(filters.current());
    setState('empty', 'No repeats match.', `Filters: ${words.join(', ') || 'none'}.`,
      { label: 'Clear filters', run: () => filters.resetTo({}, { chart: true }) });
  } else {
    setState(null);
  }
  const total = groups.reduce((n, g) => n + (Number(g.count) || 0), 0);
  setText('queue-meta', groups.length ? `${fmtNum(groups.length)}${nextCursor ? '+' : ''} groups · ${fmtNum(total)} signals · last seen first` : '');
  $('#groups-more').hidden = !nextCursor;
  setText('groups-end', groups.length && !nextCursor ? `End of the list · ${fmtNum(groups.length)} group${groups.length === 1 ? '' : 's'}` : '');
  for (const key of [...selected]) if (!byKey(key)) selected.delete(key);
  updateBar();
}

const answerGroups = (data) => (data && Array.isArray(data.groups) ? data.groups : [])
  .filter((g) => isPlainObject(g) && typeof g.rule_id === 'string' && typeof g.host_id === 'string');

// Like the signal queue: `reset` from the first page, else what is on screen reloaded.
export async function load({ reset = false, quiet = false } = {}) {
  const seq = ++loadSeq;
  const panel = $('#queue-panel');
  const limit = reset ? PAGE_SIZE : Math.min(500, Math.max(PAGE_SIZE, groups.length));
  if (reset) {
    panel.setAttribute('aria-busy', 'true');
    if (!groups.length) setState('loading', 'Loading groups…');
  }
  let data;
  try {
    data = await api('GET', `/signals/groups${groupListQuery(filters.current(), filters.currentView(), { limit })}`);
  } catch (err) {
    if (seq !== loadSeq) return false;
    panel.removeAttribute('aria-busy');
    if (err.status === 401) return false;
    if (reset || !groups.length) {
      groups = [];
      $('#groups').replaceChildren();
      setState('error', 'Could not load groups', advice(err), { label: 'Retry', run: () => load({ reset: true }) });
    } else if (!quiet) {
      toast(`Refresh failed: ${err.message}`, true);
    }
    return false;
  }
  if (seq !== loadSeq) return true;
  panel.removeAttribute('aria-busy');
  if (reset) selected.clear();
  groups = answerGroups(data);
  nextCursor = data && typeof data.next_cursor === 'string' ? data.next_cursor : null;
  render();
  return true;
}

async function loadMore() {
  if (!nextCursor) return;
  const seq = loadSeq;
  const button = $('#groups-more');
  button.disabled = true;
  try {
    const data = await api('GET', `/signals/groups${groupListQuery(filters.current(), filters.currentView(), { limit: PAGE_SIZE, cursor: nextCursor })}`);
    if (seq !== loadSeq) return;
    const known = new Set(groups.map(keyOf));
    groups = groups.concat(answerGroups(data).filter((g) => !known.has(keyOf(g))));
    nextCursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
    render();
  } catch (err) {
    if (err.status !== 401) toast(`Could not load more: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
}

function updateBar() {
  const n = selected.size;
  const bar = $('#group-bar');
  bar.classList.toggle('is-active', n > 0);
  const signals = [...selected].reduce((sum, key) => sum + (Number((byKey(key) || {}).count) || 0), 0);
  setText('group-count', n ? `${fmtNum(n)} group${n === 1 ? '' : 's'} selected · ${fmtNum(signals)} signals` : 'Select groups to triage all their signals in view');
  $('#group-note').disabled = n === 0;
  for (const b of $$('[data-group-bulk]', bar)) b.disabled = n === 0;
  const all = $('#group-select-all');
  all.checked = n > 0 && n === groups.length;
  all.indeterminate = n > 0 && !all.checked;
  all.disabled = groups.length === 0;
}

// Each selected group whole, as this view shows it: the server changes it in chunks.
async function triageSelected(status) {
  const chosen = [...selected].map(byKey).filter(Boolean);
  if (!chosen.length) return;
  const note = $('#group-note').value.trim();
  for (const b of $$('#group-bar [data-group-bulk]')) b.disabled = true;
  const filter = triageFilter(filters.current(), filters.currentView());
  let changed = 0;
  try {
    for (const group of chosen) {
      const body = { group: { rule_id: group.rule_id, host_id: group.host_id }, filter, status };
      if (note) body.note = note;
      // The server changes up to 100,000 a call and says when more are left.
      for (let call = 0; call < MAX_CALLS_PER_GROUP; call += 1) {
        const res = await api('POST', '/signals/status', body);
        changed += res && typeof res.updated === 'number' ? res.updated : 0;
        if (!(res && res.more === true)) break;
      }
    }
    $('#group-note').value = '';
    selected.clear();
    toast(`${statusVerb(status)} ${fmtNum(changed)} signal${changed === 1 ? '' : 's'} in ${fmtNum(chosen.length)} group${chosen.length === 1 ? '' : 's'}`);
    cards.load();
    load({ reset: false, quiet: true });
  } catch (err) {
    if (err.status !== 401) toast(`Group triage failed after ${fmtNum(changed)} signals. ${advice(err)}`, true);
  } finally {
    updateBar();
  }
}

export function init() {
  $('#groups-more').addEventListener('click', loadMore);
  $('#group-select-all').addEventListener('change', (e) => {
    selected.clear();
    if (e.target.checked) for (const g of groups) selected.add(keyOf(g));
    render();
  });
  for (const b of $$('#group-bar [data-group-bulk]')) b.addEventListener('click', () => triageSelected(b.dataset.groupBulk));
  $('#group-note').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); triageSelected('acknowledged'); } });
}
