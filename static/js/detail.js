// A signal opened in the queue: its description, tags, process tree (oldest ancestor first),
// context, facts, triage form and status history.
import { advice, api, isPlainObject } from './api.js';
import { $, el, toast } from './dom.js';
import * as filters from './filters.js';
import { basename, fmtNum, fmtUtc, parseTs, shellJoin } from './format.js';
import { qs } from './query.js';
import * as queue from './queue.js';
import * as silenceForm from './silence-form.js';
import { setStatus } from './triage.js';
import { STATUSES } from './vocabulary.js';

const COLLAPSED_KEYS = new Set(['event', 'sample_event']);
const LONG_JSON = 600; // characters of nested JSON shown folded

const expanded = new Set();
const details = new Map(); // id -> GET /signal answer, or { error }

export const isExpanded = (id) => expanded.has(id);

export function toggle(id) {
  if (expanded.has(id)) expanded.delete(id);
  else { expanded.add(id); load(id); }
  queue.refreshRow(id);
}

async function load(id, { force = false } = {}) {
  if (!force && details.has(id)) { render(id); return; }
  const before = details.get(id);
  if (!before) render(id);
  let next;
  try {
    // Not /signals/{id}: the browser resolves the ids `.` and `..` (even as %2E%2E) away.
    const detail = await api('GET', `/signal${qs({ signal_id: id })}`);
    next = isPlainObject(detail) ? detail : {};
  } catch (err) {
    if (err.status === 401) return;
    next = { error: err.status === 404 ? 'This signal no longer exists.' : advice(err) };
  }
  // A refresh that changed nothing leaves the open sections and scroll positions alone.
  if (before && JSON.stringify(before) === JSON.stringify(next)) return;
  details.set(id, next);
  render(id);
}

function copyButton(getText, what) {
  return el('button', {
    type: 'button', class: 'copy', text: 'copy', title: `Copy the ${what}`,
    onclick: async (e) => {
      e.stopPropagation();
      try {
        await navigator.clipboard.writeText(getText());
        toast(`Copied the ${what}`);
      } catch {
        toast('The browser did not allow copying; select the text instead.', true);
      }
    },
  });
}

function renderTags(tags) {
  const list = Array.isArray(tags) ? tags : [];
  if (!list.length) return el('div', { class: 'tags' }, el('span', { class: 'muted', text: 'No tags' }));
  return el('div', { class: 'tags' }, list.map((t) => el('span', { class: 'tag', text: typeof t === 'string' ? t : JSON.stringify(t) })));
}

// The server stores a signal that is too large shortened rather than refuse it (the agent
// would retry it forever); say so, and how large the context was.
function renderShortened(data) {
  const cut = Array.isArray(data.shortened) ? data.shortened.filter((f) => typeof f === 'string') : [];
  if (!cut.length) return null;
  const parts = cut.map((field) => (field === 'context' && Number.isFinite(data.original_context_bytes)
    ? `its context (${fmtNum(data.original_context_bytes)} bytes as received)`
    : `its ${field.replace('_', ' ')}`));
  return el('p', {
    class: 'detail-shortened',
    text: `Stored shortened: ${parts.join(', ')} ${cut.length === 1 ? 'was' : 'were'} too large. `
      + 'Each value that was cut ends with a marker such as "…[1200 bytes cut]".',
  });
}

function renderProcessTree(tree) {
  if (!Array.isArray(tree)) return null;
  const nodes = tree.filter(isPlainObject).map((node, index) => ({ node, index }));
  if (!nodes.length) return null;
  // The agent lists the target first; draw the chain from the oldest ancestor down to it.
  nodes.sort((a, b) => {
    const da = Number.isFinite(Number(a.node.depth)) ? Number(a.node.depth) : a.index;
    const db = Number.isFinite(Number(b.node.depth)) ? Number(b.node.depth) : b.index;
    return db - da || b.index - a.index;
  });
  return el('ol', { class: 'ptree', 'aria-label': 'Process ancestry, oldest first' }, nodes.map(({ node }) => {
    const isTarget = node.relation === 'target' || Number(node.depth) === 0;
    const path = typeof node.path === 'string' ? node.path : '';
    const user = node.user !== undefined ? `${node.user}${node.uid !== undefined ? ` (${node.uid})` : ''}`
      : node.uid !== undefined ? `uid ${node.uid}` : null;
    const facts = [
      node.pid !== undefined ? `pid ${node.pid}` : null,
      node.pidversion !== undefined ? `v${node.pidversion}` : null,
      user,
    ].filter(Boolean).join(' · ');
    const args = Array.isArray(node.args) && node.args.length ? shellJoin(node.args) : null;
    const started = typeof node.start_time === 'string' ? parseTs(node.start_time) : NaN;
    return el('li', { class: `pnode${isTarget ? ' is-target' : ''}` },
      el('div', { class: 'pnode-card', title: Number.isFinite(started) ? `started ${fmtUtc(started)} UTC` : undefined },
        el('div', { class: 'pnode-head' },
          el('span', { class: 'pnode-rel', text: String(node.relation ?? (isTarget ? 'target' : 'ancestor')) }),
          el('span', { class: 'pnode-name', text: basename(path) || '(unknown)' }),
          el('span', { class: 'pnode-facts', text: facts })),
        el('div', { class: 'pnode-path', text: path || '(no path)' }),
        args ? el('div', { class: 'pnode-args', text: args }) : null));
  }));
}

function renderValue(key, value) {
  if (value === null || value === undefined) return el('dd', { class: 'is-null', text: 'null' });
  if (typeof value !== 'object') return el('dd', { text: String(value) });
  if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) {
    if (!value.length) return el('dd', { class: 'is-null', text: '[ ]' });
    return el('dd', {}, value.map((v) => el('span', { class: 'token', text: v === null ? 'null' : String(v) })));
  }
  const json = JSON.stringify(value, null, 2);
  const pre = el('pre', { class: 'kv-nested', text: json });
  if (COLLAPSED_KEYS.has(key) || json.length > LONG_JSON) {
    const count = Array.isArray(value) ? value.length : Object.keys(value).length;
    const size = `${count} ${Array.isArray(value) ? 'item' : 'field'}${count === 1 ? '' : 's'}`;
    return el('dd', {}, el('details', { class: 'nested' }, el('summary', { text: `${size} — show` }), pre));
  }
  return el('dd', {}, pre);
}

function renderContext(context) {
  const keys = Object.keys(context).filter((k) => k !== 'process_tree');
  const wrap = el('div', {});
  if (!keys.length) wrap.append(el('div', { class: 'muted', text: 'No context.' }));
  else {
    const dl = el('dl', { class: 'kv' });
    for (const key of keys) dl.append(el('dt', { text: key }), renderValue(key, context[key]));
    wrap.append(dl);
  }
  const raw = JSON.stringify(context, null, 2);
  wrap.append(el('details', { class: 'raw' },
    el('summary', {}, 'Raw JSON ', copyButton(() => raw, 'context JSON')),
    el('pre', { class: 'json', text: raw })));
  return wrap;
}

function renderTriage(id, data, draftValue) {
  const { status } = data;
  const note = el('textarea', { placeholder: 'Note for the history (optional)', maxlength: '2000', 'aria-label': 'Triage note' });
  note.value = draftValue || '';
  const action = (target, label) => el('button', {
    type: 'button',
    class: `btn btn-small${target === 'resolved' ? ' btn-primary' : ''}`,
    text: label,
    disabled: status === target,
    'data-action': target,
    onclick: async (e) => {
      e.currentTarget.disabled = true;
      const ok = await setStatus(id, target, note.value.trim());
      if (ok) note.value = '';
    },
  });
  note.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) { e.preventDefault(); setStatus(id, status === 'resolved' ? 'open' : 'resolved', note.value.trim()); }
  });
  return el('section', { class: 'triage needs-write' },
    el('div', { class: 'triage-current' }, 'Status ', el('span', { class: `status-badge status-${STATUSES.includes(status) ? status : 'unknown'}`, text: String(status ?? '') })),
    note,
    el('div', { class: 'triage-actions' },
      action('acknowledged', 'Acknowledge'),
      action('resolved', 'Resolve'),
      action('open', 'Reopen'),
      el('button', {
        type: 'button', class: 'btn btn-small btn-ghost', text: 'Silence…', 'data-action': 'silence-open',
        'aria-expanded': String(silenceForm.isOpen(id)), title: 'Keep signals like this one out of the queue for a while',
        onclick: () => { silenceForm.toggle(id, data); render(id); },
      })));
}

function silenceFact(silence) {
  if (!isPlainObject(silence)) return null;
  const until = silence.expired_at || silence.ends_at;
  const verb = silence.state === 'active' ? 'until' : 'ended';
  return `#${silence.id} by ${silence.created_by}, ${verb} ${fmtUtc(parseTs(until))} UTC: ${silence.comment}`;
}

function renderFacts(data) {
  const when = (value) => (Number.isFinite(parseTs(value)) ? `${fmtUtc(parseTs(value))} UTC` : value);
  const rows = [
    ['Signal ID', data.signal_id],
    ['Host', data.host_id],
    ['Rule', data.rule_id],
    ['Severity', data.severity],
    ['Event time', when(data.ts)],
    ['Received', when(data.received_at)],
  ];
  if (data.shipped_at) rows.push(['Forwarded', `${fmtUtc(parseTs(data.shipped_at))} UTC`]);
  const silenced = silenceFact(data.silence);
  if (silenced) rows.push(['Silenced', silenced]);
  const pivots = {
    Host: (v) => ({ host_id: v }),
    Rule: (v) => ({ rule_id: v }),
  };
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of rows) {
    if (v === undefined || v === null) continue;
    let value = String(v);
    if (k in pivots) {
      value = el('button', {
        type: 'button', class: 'pivot', text: value, title: `Show only signals with this ${k.toLowerCase()}`,
        onclick: () => filters.set(pivots[k](String(v))),
      });
    } else if (k === 'Signal ID') {
      value = el('span', {}, value, ' ', copyButton(() => String(v), 'signal ID'));
    }
    dl.append(el('dt', { text: k }), el('dd', {}, value));
  }
  return dl;
}

function renderHistory(history) {
  const entries = Array.isArray(history) ? history.filter(isPlainObject) : [];
  if (!entries.length) return el('div', { class: 'history-empty', text: 'No status changes yet.' });
  return el('ol', { class: 'history' }, entries.map((h) => el('li', {},
    el('div', {},
      el('span', { class: `status-badge status-${h.from_status}`, text: String(h.from_status ?? '—') }),
      ' → ',
      el('span', { class: `status-badge status-${h.to_status}`, text: String(h.to_status ?? '') }),
      h.actor ? el('span', { class: 'muted', text: ` by ${h.actor}` }) : null),
    el('div', { class: 'history-when', text: `${fmtUtc(parseTs(h.changed_at))} UTC` }),
    h.note ? el('div', { class: 'history-note', text: String(h.note) }) : null)));
}

function render(id) {
  const row = queue.rowFor(id);
  const box = row && row.querySelector(':scope > .sig-detail');
  if (!box) return;
  const signal = queue.signalById(id) || {};
  const detail = details.get(id);
  // Keep a note the analyst is typing across background refreshes.
  const draft = box.querySelector('.triage textarea');
  const draftValue = draft ? draft.value : '';
  const draftFocused = draft && document.activeElement === draft;

  const data = detail && !detail.error ? { ...signal, ...detail } : signal;
  const context = isPlainObject(data.context) ? data.context : {};
  const main = el('div', { class: 'detail-main' });
  const side = el('div', { class: 'detail-side' });

  main.append(el('section', {},
    el('h3', { class: 'detail-title', text: String(data.title ?? '') }),
    el('p', {
      class: `detail-desc${data.rule_description ? '' : ' is-empty'}`,
      text: data.rule_description ? String(data.rule_description) : 'The rule has no description.',
    }),
    renderTags(data.tags),
    renderShortened(data)));

  const tree = renderProcessTree(context.process_tree);
  if (tree) main.append(el('section', {}, el('h4', { text: 'Process tree' }), tree));
  main.append(el('section', {}, el('h4', { text: 'Context' }), renderContext(context)));

  side.append(renderTriage(id, data, draftValue));
  const form = silenceForm.render(id, data);
  if (form) side.append(form);
  side.append(el('section', {}, el('h4', { text: 'Signal' }), renderFacts(data)));
  const history = el('section', {}, el('h4', { text: 'History' }));
  if (!detail) history.append(el('div', { class: 'detail-loading' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…'));
  else if (detail.error) history.append(el('div', { class: 'detail-error', text: `Could not load the history: ${detail.error}` }));
  else history.append(renderHistory(detail.history));
  side.append(history);

  box.replaceChildren(main, side);
  if (draftFocused) {
    const area = $('.triage textarea', box);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }
}

// Open rows carry their detail box; closed rows lose it.
function decorate(li, signal) {
  const id = signal.signal_id;
  const open = expanded.has(id);
  li.refs.row.setAttribute('aria-expanded', String(open));
  const box = li.querySelector(':scope > .sig-detail');
  if (open && !box) {
    li.append(el('div', { class: 'sig-detail' }));
    render(id);
  } else if (!open && box) {
    box.remove();
  }
}

export function init() {
  silenceForm.onChange((id, silenced) => {
    render(id);
    if (silenced) queue.load({ quiet: true });
  });
  queue.on('row', decorate);
  queue.on('open', toggle);
  queue.on('reset', () => { expanded.clear(); details.clear(); });
  queue.on('prune', (keep) => { for (const id of [...expanded]) if (!keep.has(id)) expanded.delete(id); });
  queue.on('loaded', ({ reset }) => { for (const id of expanded) load(id, { force: !reset }); });
  queue.on('status', (id) => {
    details.delete(id);
    if (expanded.has(id)) load(id, { force: true });
  });
}
