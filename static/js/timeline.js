// An agent's timeline, opened from the agents panel: when it was online and offline, its
// availability per day, the agent and macOS versions it ran and its reboots.
import { advice, api, isPlainObject } from './api.js';
import { el, svg } from './dom.js';
import { fmtUtc, parseTs } from './format.js';
import { currentVersion, fmtPercent, fmtSpan, stripSegments } from './timeline-layout.js';

const STRIP_WIDTH = 1000; // SVG units; the strip stretches to the panel's width
const STRIP_HEIGHT = 14;

const timelines = new Map(); // agent id -> last answer of GET /agents/{id}, or { error }

const when = (value) => fmtUtc(parseTs(value), false);
const versionText = (v) => [v.version ? String(v.version) : 'no version',
  v.os_version ? `macOS ${v.os_version}` : null].filter(Boolean).join(' · ');

function strip(t) {
  const root = svg('svg', { class: 'tl-strip', viewBox: `0 0 ${STRIP_WIDTH} ${STRIP_HEIGHT}`,
    preserveAspectRatio: 'none', role: 'img',
    'aria-label': `Online ${fmtPercent(t.availability)} of the window` });
  for (const s of stripSegments(t.intervals, t.since, t.until)) {
    const rect = svg('rect', { class: `tl-${s.state}`, x: s.x * STRIP_WIDTH, y: 0,
      width: Math.max(s.width * STRIP_WIDTH, 0.5), height: STRIP_HEIGHT });
    const title = svg('title');
    title.textContent = `${s.state} ${fmtUtc(s.from, false)} – ${fmtUtc(s.to, false)} UTC`;
    rect.append(title);
    root.append(rect);
  }
  return root;
}

function days(t) {
  const list = (Array.isArray(t.days) ? t.days : []).filter(isPlainObject).slice(-14);
  if (!list.length) return el('p', { class: 'tl-empty', text: 'Not heard from in this window.' });
  return el('ol', { class: 'tl-days' }, list.map((d) => {
    const share = typeof d.availability === 'number' ? d.availability : 0;
    return el('li', { class: 'tl-day' },
      el('span', { class: 'tl-day-date', text: String(d.date) }),
      svg('svg', { class: 'tl-day-bar', viewBox: '0 0 100 6', preserveAspectRatio: 'none',
        'aria-hidden': 'true' },
      svg('rect', { class: 'tl-offline', x: 0, y: 0, width: 100, height: 6 }),
      svg('rect', { class: 'tl-online', x: 0, y: 0, width: Math.max(0, Math.min(1, share)) * 100, height: 6 })),
      el('span', { class: 'tl-day-value', text: fmtPercent(d.availability) }));
  }));
}

function versions(t) {
  const list = (Array.isArray(t.versions) ? t.versions : []).filter(isPlainObject);
  if (!list.length) return el('p', { class: 'tl-empty', text: 'No version reported.' });
  return el('ol', { class: 'tl-versions' }, list.slice().reverse().map((v) => el('li', {},
    el('span', { class: 'tl-what', text: versionText(v) }),
    el('span', { class: 'tl-when', text: v.until === null ? `since ${when(v.since)}` : `${when(v.since)} – ${when(v.until)}` }))));
}

function reboots(t) {
  const list = (Array.isArray(t.reboots) ? t.reboots : []).filter(isPlainObject);
  if (!list.length) return el('p', { class: 'tl-empty', text: 'No reboot in this window.' });
  return el('ol', { class: 'tl-reboots' }, list.slice().reverse().map((r) => el('li', {},
    el('span', { class: 'tl-what', text: r.booted_at ? `booted ${when(r.booted_at)}` : 'rebooted' }),
    el('span', { class: 'tl-when', text: `seen ${when(r.seen_at)}` }))));
}

function render(box, agentId, onSignals) {
  const t = timelines.get(agentId);
  const signals = el('button', { type: 'button', class: 'btn btn-small tl-signals', text: 'Show its signals',
    onclick: (e) => { e.stopPropagation(); onSignals(); } });
  if (!t) {
    box.replaceChildren(el('p', { class: 'tl-empty', text: 'Loading the timeline…' }), signals);
    return;
  }
  if (t.error) {
    box.replaceChildren(el('p', { class: 'tl-error', text: t.error }), signals);
    return;
  }
  const rebootCount = Array.isArray(t.reboots) ? t.reboots.length : 0;
  const current = currentVersion(t.versions);
  const summary = [`Online ${fmtPercent(t.availability)} of the last ${fmtSpan(t.since, t.until)}`,
    `${rebootCount} reboot${rebootCount === 1 ? '' : 's'}`,
    current ? `${versionText(current)} since ${when(current.since)}` : null].filter(Boolean).join(' · ');
  box.replaceChildren(
    el('p', { class: 'tl-summary', text: summary }),
    strip(t),
    el('div', { class: 'tl-axis' }, el('span', { text: when(t.since) }), el('span', { text: when(t.until) })),
    el('section', {}, el('h4', { text: 'Availability per day (UTC)' }), days(t)),
    el('section', {}, el('h4', { text: 'Versions' }), versions(t)),
    el('section', {}, el('h4', { text: 'Reboots' }), reboots(t)),
    signals,
  );
}

// Fills `box` with the agent's timeline: the last one known at once, then a fresh one.
export async function show(box, agentId, { onSignals }) {
  render(box, agentId, onSignals);
  let next;
  try {
    // Named in the query: a path segment cannot carry every id (`/`, `..`, `problems`).
    const answer = await api('GET', `/agent?agent_id=${encodeURIComponent(agentId)}`);
    next = isPlainObject(answer) ? answer : { error: 'The server sent no timeline.' };
  } catch (err) {
    if (err.status === 401) return;
    next = { error: err.status === 404 ? 'This agent is no longer known.' : `Could not load the timeline. ${advice(err)}` };
  }
  timelines.set(agentId, next);
  if (box.isConnected) render(box, agentId, onSignals);
}
