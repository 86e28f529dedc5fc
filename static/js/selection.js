// Selecting signals (checkbox, shift-click for a range, x, select all) and triaging the
// selection at once from the bulk bar.
import { advice, api } from './api.js';
import * as cards from './cards.js';
import { $, $$, setText, toast } from './dom.js';
import { fmtNum, statusVerb } from './format.js';
import * as queue from './queue.js';

const selected = new Set();
let lastIndex = -1; // where the last click was, for shift-click ranges

export const has = (id) => selected.has(id);
export const size = () => selected.size;

function updateBulkbar() {
  const n = selected.size;
  const signals = queue.list();
  const bar = $('#bulkbar');
  bar.classList.toggle('is-active', n > 0);
  setText('bulk-count', n ? `${fmtNum(n)} selected` : 'Select signals to triage several at once');
  $('#bulk-note').disabled = n === 0;
  for (const b of $$('[data-bulk]', bar)) b.disabled = n === 0;
  const all = $('#select-all');
  all.checked = n > 0 && signals.length > 0 && signals.every((s) => selected.has(s.signal_id));
  all.indeterminate = n > 0 && !all.checked;
  all.disabled = signals.length === 0;
}

// One signal, or with `range` every signal between it and the last one clicked.
export function toggle(id, on, range) {
  const signals = queue.list();
  const index = signals.findIndex((s) => s.signal_id === id);
  const ids = range && lastIndex >= 0
    ? signals.slice(Math.min(lastIndex, index), Math.max(lastIndex, index) + 1).map((s) => s.signal_id)
    : [id];
  for (const x of ids) { if (on) selected.add(x); else selected.delete(x); queue.refreshRow(x); }
  lastIndex = index;
  updateBulkbar();
}

export function clear() {
  selected.clear();
  for (const s of queue.list()) queue.refreshRow(s.signal_id);
  updateBulkbar();
}

async function triageSelection(status) {
  const ids = [...selected];
  if (!ids.length) return;
  const note = $('#bulk-note').value.trim();
  for (const b of $$('#bulkbar [data-bulk]')) b.disabled = true;
  try {
    const missing = new Set();
    let updated = 0;
    for (let start = 0; start < ids.length; start += queue.MAX_LIMIT) {
      const chunk = ids.slice(start, start + queue.MAX_LIMIT);
      const body = { signal_ids: chunk, status };
      if (note) body.note = note;
      const res = await api('POST', '/signals/status', body);
      for (const id of Array.isArray(res && res.not_found) ? res.not_found : []) missing.add(id);
      updated += res && typeof res.updated === 'number' ? res.updated : chunk.length;
      queue.applyStatus(chunk.filter((id) => !missing.has(id)), status);
    }
    selected.clear();
    for (const id of ids) queue.refreshRow(id);
    $('#bulk-note').value = '';
    toast(`${statusVerb(status)} ${fmtNum(updated)} signal${updated === 1 ? '' : 's'}${missing.size ? ` · ${missing.size} no longer exist` : ''}`);
    cards.load();
  } catch (err) {
    if (err.status !== 401) toast(`Bulk update failed. ${advice(err)}`, true);
  } finally {
    updateBulkbar();
  }
}

function decorate(li, signal) {
  const on = selected.has(signal.signal_id);
  li.refs.check.checked = on;
  li.classList.toggle('is-selected', on);
}

export function init() {
  queue.on('row', decorate);
  queue.on('reset', () => { selected.clear(); updateBulkbar(); });
  queue.on('prune', (keep) => { for (const id of [...selected]) if (!keep.has(id)) selected.delete(id); });
  queue.on('rendered', updateBulkbar);
  queue.on('check', toggle);
  $('#select-all').addEventListener('change', (e) => {
    if (e.target.checked) for (const s of queue.list()) selected.add(s.signal_id);
    else selected.clear();
    for (const s of queue.list()) queue.refreshRow(s.signal_id);
    updateBulkbar();
  });
  for (const b of $$('#bulkbar [data-bulk]')) {
    b.addEventListener('click', () => triageSelection(b.dataset.bulk));
  }
  $('#bulk-note').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); triageSelection('acknowledged'); } });
}
