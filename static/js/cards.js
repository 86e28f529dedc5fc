// The headline cards (totals, last 24 h, open critical + high, agents); each opens its view.
import { api, isPlainObject } from './api.js';
import { $, el, setText } from './dom.js';
import * as filters from './filters.js';
import { fmtNum } from './format.js';
import { STATUSES } from './vocabulary.js';

function render(stats) {
  setText('card-total-value', fmtNum(stats.total_signals));
  const byStatus = isPlainObject(stats.by_status) ? stats.by_status : {};
  setText('card-total-sub', STATUSES.map((s) => `${fmtNum(byStatus[s] || 0)} ${s === 'acknowledged' ? 'ack' : s}`).join(' · '));
  setText('card-24h-value', fmtNum(stats.last_24h));
  // by_host and top_rules are {name: count}, busiest first.
  const hosts = isPlainObject(stats.by_host) ? Object.entries(stats.by_host) : [];
  setText('card-24h-sub', hosts.length ? `top host, all time: ${hosts[0][0]} (${fmtNum(hosts[0][1])})` : '');

  const open = isPlainObject(stats.open_by_severity) ? stats.open_by_severity : null;
  if (open) {
    const crit = Number(open.critical || 0);
    const high = Number(open.high || 0);
    setText('card-open-value', fmtNum(crit + high));
    setText('card-open-sub', `${fmtNum(crit)} critical · ${fmtNum(high)} high`);
    $('#card-open').classList.toggle('is-hot', crit + high > 0);
    // A background tab still says when something urgent is waiting.
    document.title = `${crit + high ? `(${crit + high}) ` : ''}Santamon · Signals`;
  }

  const agents = isPlainObject(stats.agents) ? stats.agents : {};
  const active = Number(agents.active || 0);
  const stale = Number(agents.stale || 0);
  $('#card-agents-value').replaceChildren(fmtNum(active), ' / ', el('span', { class: stale ? 'stale-part' : '', text: fmtNum(stale) }));
  setText('card-agents-sub', `${fmtNum(agents.total ?? active + stale)} reporting agents`);
  $('#card-agents').classList.toggle('is-stale', stale > 0);

  filters.suggestHosts(hosts.map(([host]) => host));
  filters.suggestRules(isPlainObject(stats.top_rules) ? Object.keys(stats.top_rules) : []);
}

// Resolves to false when the counts could not be loaded.
export async function load() {
  let stats;
  try {
    stats = await api('GET', '/stats');
  } catch (err) {
    if (err.status === 401) return false;
    setText('card-total-sub', `unavailable: ${err.message}`);
    return false;
  }
  render(stats || {});
  return true;
}

export function init() {
  $('#card-total').addEventListener('click', () => filters.resetTo({ status: 'all', window: 'all' }, { chart: true }));
  $('#card-24h').addEventListener('click', () => filters.resetTo({ status: 'all', window: '24h' }, { chart: true }));
  $('#card-open').addEventListener('click', () => filters.resetTo({ severity: ['critical', 'high'], status: 'open', window: 'all' }, { chart: true }));
  $('#card-agents').addEventListener('click', () => $('#agents-panel').scrollIntoView({ behavior: 'smooth', block: 'start' }));
}
