// The agent connection problems panel: per client address, what kept agents from reaching
// this server in the last 24 hours (failed TLS handshakes, wrong or revoked keys, a key used
// for another host) and signals stored with their oversized context shortened, so whoever
// rolls out agents sees which Macs fail and why.
import { advice, api, isPlainObject } from './api.js';
import { $, el, setText } from './dom.js';
import { fmtAgo, fmtNum, fmtUtc, parseTs } from './format.js';
import { PROBLEM_KINDS } from './vocabulary.js';

const HOURS = 24;

// Rows of (client, kind) as the API sends them, most recent first -> one entry per client,
// in the same order, with its kinds.
export function byClient(rows) {
  const clients = new Map();
  for (const row of rows) {
    if (!clients.has(row.client)) clients.set(row.client, { client: String(row.client), total: 0, kinds: [] });
    const entry = clients.get(row.client);
    entry.total += Number(row.count) || 0;
    entry.kinds.push(row);
  }
  return [...clients.values()];
}

function renderKind(row) {
  const kind = PROBLEM_KINDS[row.kind] ? row.kind : 'unknown';
  const seen = parseTs(row.last_seen);
  return el('li', { class: `problem problem-${kind}`, 'data-kind': kind },
    el('span', { class: 'problem-kind', text: PROBLEM_KINDS[kind] || String(row.kind) }),
    el('span', { class: 'problem-count', text: `${fmtNum(Number(row.count))} time${Number(row.count) === 1 ? '' : 's'}` }),
    el('span', { class: 'problem-seen', title: `${fmtUtc(seen)} UTC`, text: fmtAgo(seen) }),
    el('span', { class: 'problem-detail', text: String(row.detail ?? '') }));
}

function render(rows) {
  const clients = byClient(rows.filter(isPlainObject));
  const total = clients.reduce((sum, c) => sum + c.total, 0);
  setText('problems-meta', clients.length
    ? `${fmtNum(clients.length)} address${clients.length === 1 ? '' : 'es'} · ${fmtNum(total)} in all`
    : '');
  const box = $('#problems-state');
  box.hidden = clients.length > 0;
  box.textContent = `None in the last ${HOURS} hours: every agent that connected got through.`;
  $('#problems').replaceChildren(...clients.map((c) => el('li', { class: 'problem-client', 'data-client': c.client },
    el('div', { class: 'problem-address', text: c.client }),
    el('ul', { class: 'problem-kinds' }, c.kinds.map(renderKind)))));
}

// Resolves to false when the problems could not be loaded.
export async function load() {
  let data;
  try {
    data = await api('GET', `/agents/problems?hours=${HOURS}`);
  } catch (err) {
    if (err.status === 401) return false;
    const box = $('#problems-state');
    box.textContent = `Could not load the agent connection problems. ${advice(err)}`;
    box.hidden = false;
    return false;
  }
  render(data && Array.isArray(data.problems) ? data.problems : []);
  return true;
}
