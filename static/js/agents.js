// The agents panel (stale ones first, "silent for N min"), each agent opening into its
// timeline, and the banner that names stale agents: a missing heartbeat means agent failure
// or tampering.
import { advice, api, isPlainObject } from './api.js';
import { $, el, setText } from './dom.js';
import * as filters from './filters.js';
import { fmtAgo, fmtDuration, fmtNum, fmtSilent, fmtUtc, parseTs } from './format.js';
import * as timeline from './timeline.js';

let shown = []; // the agents as last rendered
let opened = null; // the agent whose timeline is open

// How the agent's heartbeats authenticate: a key of its own, bound to its host, or one that any
// agent may hold.
const AUTH_LABELS = { bound: 'own key', shared: 'shared key', admin: 'admin key' };

const lastSeen = (a) => parseTs(a.last_seen ?? a.received_at ?? a.timestamp);

// Stale agents first, longest silent first; then the rest by name.
function byUrgency(a, b) {
  const sa = a.status === 'stale' ? 0 : 1;
  const sb = b.status === 'stale' ? 0 : 1;
  if (sa !== sb) return sa - sb;
  if (sa === 0) return lastSeen(a) - lastSeen(b);
  return String(a.agent_id).localeCompare(String(b.agent_id));
}

// A stale agent in a maintenance window (a silence on its host) raises no alert: it is
// expected to be silent, and says until when.
const inMaintenance = (a) => a.status === 'stale' && typeof a.maintenance_until === 'string';

function renderAgent(a) {
  const isStale = a.status === 'stale';
  const maintenance = inMaintenance(a);
  const seen = lastSeen(a);
  const uptime = fmtDuration(a.uptime_seconds);
  const meta = [
    a.version ? String(a.version) : null,
    a.os_version ? `macOS ${a.os_version}` : null,
    uptime ? `up ${uptime}` : null,
    typeof a.auth === 'string' && Object.hasOwn(AUTH_LABELS, a.auth) ? AUTH_LABELS[a.auth] : null,
  ].filter(Boolean).join(' · ');
  const id = String(a.agent_id);
  const isOpen = id === opened;
  const item = el('li', {
    class: `agent${isStale ? ' is-stale' : ''}${isOpen ? ' is-open' : ''}${maintenance ? ' is-maintenance' : ''}`,
    title: `Last heartbeat received ${fmtUtc(seen)} UTC${a.first_seen ? ` · first seen ${fmtUtc(parseTs(a.first_seen))} UTC` : ''}`,
    tabindex: '0',
    'aria-expanded': isOpen ? 'true' : 'false',
    'aria-label': `${id}: ${isStale ? 'stale' : 'active'}. ${isOpen ? 'Close' : 'Open'} its timeline`,
    'data-agent': id,
    'data-auth': typeof a.auth === 'string' ? a.auth : '',
  },
  el('span', { class: 'agent-dot', 'aria-hidden': 'true' }),
  el('span', { class: 'agent-name', text: id }),
  el('span', { class: 'agent-seen', text: isStale ? fmtSilent(seen) : `seen ${fmtAgo(seen)}` }),
  el('span', { class: 'agent-meta', text: meta || 'no version reported' }),
  maintenance ? el('span', { class: 'agent-maintenance', text: `in maintenance until ${fmtUtc(parseTs(a.maintenance_until), false)} UTC` }) : null);
  if (isOpen) {
    const box = el('div', { class: 'agent-timeline', role: 'region', 'aria-label': `Timeline of ${id}`,
      onclick: (e) => e.stopPropagation(), onkeydown: (e) => e.stopPropagation() });
    item.append(box);
    timeline.show(box, id, { onSignals: () => filters.set({ host_id: id }) });
  }
  const toggle = () => {
    opened = isOpen ? null : id;
    renderList();
    const again = [...$('#agents').children].find((node) => node.dataset.agent === id);
    if (again) again.focus(); // the list was rebuilt: keep the keyboard where it was
  };
  item.addEventListener('click', toggle);
  item.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.stopPropagation(); toggle(); } });
  return item;
}

function renderList() {
  $('#agents').replaceChildren(...shown.map(renderAgent));
}

function render(heartbeats) {
  const agents = heartbeats.filter(isPlainObject);
  // The banner names them in API order; those in maintenance are expected to be silent.
  const stale = agents.filter((a) => a.status === 'stale' && !inMaintenance(a));
  agents.sort(byUrgency);
  const staleCount = agents.filter((a) => a.status === 'stale').length;
  setText('agents-meta', `${fmtNum(agents.length - staleCount)} active · ${fmtNum(staleCount)} stale`);

  const box = $('#agents-state');
  if (!agents.length) {
    box.textContent = 'No agent has sent a heartbeat yet. Agents report every 30 seconds once they point at this server.';
    box.hidden = false;
  } else {
    box.hidden = true;
  }
  shown = agents;
  renderList();
  filters.suggestHosts(agents.map((a) => String(a.agent_id)));

  const banner = $('#stale-banner');
  if (stale.length) {
    const names = stale.slice(0, 3).map((a) => String(a.agent_id));
    const more = stale.length > 3 ? ` and ${stale.length - 3} more` : '';
    setText('stale-banner-text',
      `${stale.length} agent${stale.length === 1 ? ' has' : 's have'} stopped sending heartbeats (${names.join(', ')}${more}). `
      + 'Missing heartbeats mean agent failure or tampering.');
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

// Resolves to false when the agents could not be loaded.
export async function load() {
  let data;
  try {
    data = await api('GET', '/agents?status=all&limit=2000');
  } catch (err) {
    if (err.status === 401) return false;
    const box = $('#agents-state');
    box.textContent = `Could not load agents. ${advice(err)}`;
    box.hidden = false;
    return false;
  }
  render(data && Array.isArray(data.heartbeats) ? data.heartbeats : []);
  return true;
}

export function init() {
  $('#stale-banner-link').addEventListener('click', (e) => {
    e.preventDefault();
    filters.resetTo({ rule_id: 'AGENT-STALE', status: 'open', window: 'all' }, { chart: true });
    $('#queue-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  });
}
