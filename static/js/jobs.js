// The background-jobs badge in the top bar: a failing stale-agent or forwarding job blinds
// the analyst quietly, so the console says so.
import { api, isPlainObject } from './api.js';
import { $ } from './dom.js';
import { fmtNum } from './format.js';

export async function load() {
  const box = $('#jobs-health');
  let data;
  try {
    data = await api('GET', '/jobs');
  } catch {
    box.hidden = true;
    return;
  }
  const jobs = (data && Array.isArray(data.jobs) ? data.jobs : []).filter(isPlainObject);
  const forwarding = data && isPlainObject(data.forwarding) ? data.forwarding : {};
  const failing = jobs.filter((j) => j.enabled !== false && Number(j.consecutive_failures) > 0);
  const forwards = Array.isArray(forwarding.sinks) && forwarding.sinks.length > 0;
  const backlog = forwards ? Number(forwarding.backlog) || 0 : 0;
  const lines = jobs.map((j) => `${j.id}: ${j.last_outcome ?? 'not run yet'}${j.last_message ? ` — ${j.last_message}` : ''}`);
  if (forwards) lines.push(`forwarding backlog: ${backlog}`);
  box.title = lines.join('\n');
  box.className = `health${failing.length ? ' is-bad' : ''}`;
  box.textContent = failing.length
    ? `${failing.length} background job${failing.length === 1 ? '' : 's'} failing: ${failing.map((j) => j.id).join(', ')}`
    : backlog > 0 ? `jobs ok · ${fmtNum(backlog)} to forward` : 'jobs ok';
  box.hidden = jobs.length === 0;
}
