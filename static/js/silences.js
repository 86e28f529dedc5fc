// The silences page: active ones (and expired ones, kept for the record) with what they
// match, why, who made them and until when; an active one can be expired now.
import { advice, api, isPlainObject } from './api.js';
import * as cards from './cards.js';
import { $, $$, el, setText, toast } from './dom.js';
import * as filters from './filters.js';
import { fmtNum, fmtUtc, parseTs } from './format.js';
import { describeMatchers } from './glob.js';

let state = 'active';
let loadSeq = 0;

// The page replaces the signals view (cards, chart, queue and agents) while it is shown.
export function show(on) {
  $('#silences-view').hidden = !on;
  $('#cards').hidden = on;
  $('.layout').hidden = on;
}

const when = (ts) => `${fmtUtc(parseTs(ts), false)} UTC`;

function renderSilence(s) {
  const active = s.state === 'active';
  const signals = Number(s.signals) || 0;
  const ended = s.expired_at ? `expired ${when(s.expired_at)} by ${s.expired_by}` : `${active ? 'until' : 'ended'} ${when(s.ends_at)}`;
  return el('li', { class: 'silence', 'data-silence': String(s.id) },
    el('span', { class: `status-badge state-${active ? 'active' : 'expired'}`, text: active ? 'active' : 'expired' }),
    el('span', { class: 'silence-matchers', text: `#${s.id} · ${describeMatchers(s)}` }),
    active ? el('button', {
      type: 'button', class: 'btn btn-small btn-danger needs-write', text: 'Expire now', 'data-action': 'expire',
      onclick: () => expire(s),
    }) : null,
    el('span', { class: 'silence-comment', text: String(s.comment ?? '') }),
    el('span', { class: 'silence-meta', text: `by ${s.created_by} · ${when(s.created_at)} · ${ended} · ${fmtNum(signals)} signal${signals === 1 ? '' : 's'} silenced` }));
}

async function expire(silence) {
  try {
    await api('DELETE', `/silences/${encodeURIComponent(silence.id)}`);
  } catch (err) {
    if (err.status !== 401) toast(`Could not expire the silence. ${advice(err)}`, true);
    return;
  }
  toast(`Expired silence #${silence.id}: new signals like these are handled normally again`);
  cards.load();
  load();
}

export async function load() {
  const seq = ++loadSeq;
  const box = $('#silences-state-box');
  let data;
  try {
    data = await api('GET', `/silences?state=${state}`);
  } catch (err) {
    if (seq !== loadSeq || err.status === 401) return false;
    box.textContent = `Could not load silences. ${advice(err)}`;
    box.hidden = false;
    return false;
  }
  if (seq !== loadSeq) return true;
  const silences = (data && Array.isArray(data.silences) ? data.silences : []).filter(isPlainObject);
  $('#silences').replaceChildren(...silences.map(renderSilence));
  box.textContent = silences.length ? '' : `No ${state === 'all' ? '' : `${state} `}silences.`;
  box.hidden = silences.length > 0;
  setText('silences-meta', `${fmtNum(silences.length)} ${state === 'all' ? '' : `${state} `}silence${silences.length === 1 ? '' : 's'}`);
  return true;
}

export function init() {
  for (const b of $$('#silences-state [data-state]')) {
    b.addEventListener('click', () => {
      state = b.dataset.state;
      for (const other of $$('#silences-state [data-state]')) other.setAttribute('aria-pressed', String(other === b));
      load();
    });
  }
  $('#silences-back').addEventListener('click', () => filters.setView({ page: 'signals' }, { push: true }));
}
