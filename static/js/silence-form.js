// "Silence…" from a signal's detail: matchers pre-filled from the signal (its rule and host
// on), a title glob with a live check against the signal, 1 h / 24 h / 7 d, a required
// comment, and how many open signals it would resolve, asked of the server first.
import { advice, api } from './api.js';
import * as cards from './cards.js';
import { el, toast } from './dom.js';
import { fmtNum } from './format.js';
import { describeMatchers, globMatches, silenceBody } from './glob.js';
import { qs } from './query.js';

const DURATIONS = Object.freeze([['1h', '1 h'], ['24h', '24 h'], ['7d', '7 d']]);
const MATCHERS = Object.freeze([['rule_id', 'Rule'], ['host_id', 'Host'], ['severity', 'Severity'], ['title', 'Title']]);
const COUNT_PAUSE_MS = 300;

// Per signal: the form's choices, so a refresh that redraws the detail keeps them.
const drafts = new Map();
let changed = () => {};

export const isOpen = (id) => drafts.has(id);

export function toggle(id, signal) {
  if (drafts.has(id)) { drafts.delete(id); return; }
  drafts.set(id, {
    matchers: { rule_id: signal.rule_id, host_id: signal.host_id, severity: signal.severity, title: signal.title },
    use: { rule_id: true, host_id: true, severity: false, title: false },
    duration: '24h', comment: '', resolve: false, openMatching: null, error: '',
  });
}

// `callback(id, silenced)` runs when the form closes: cancelled, or a silence was made (then
// the queue and the counts change).
export function onChange(callback) {
  changed = callback;
}

function matchersOf(draft) {
  return Object.fromEntries(MATCHERS.filter(([key]) => draft.use[key] && draft.matchers[key]).map(([key]) => [key, draft.matchers[key]]));
}

export function render(id, signal) {
  const draft = drafts.get(id);
  if (!draft) return null;
  const count = el('span', { class: 'muted' });
  const resolve = el('input', { type: 'checkbox', 'data-field': 'resolve' });
  resolve.checked = draft.resolve;
  const error = el('p', { class: 'form-error', role: 'alert', hidden: !draft.error, text: draft.error });
  const submit = el('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-action': 'silence', text: 'Silence' });
  const preview = el('div', { class: 'glob-preview' });

  const showPreview = () => {
    const hit = globMatches(draft.matchers.title, String(signal.title ?? ''));
    preview.textContent = draft.use.title ? (hit ? 'Matches this signal’s title.' : 'Does not match this signal’s title.') : '';
    preview.classList.toggle('is-miss', draft.use.title && !hit);
  };
  let countTimer = null;
  let countSeq = 0;
  const refreshCount = () => {
    clearTimeout(countTimer);
    const matchers = matchersOf(draft);
    submit.disabled = !Object.keys(matchers).length || !draft.comment.trim();
    if (!Object.keys(matchers).length) { count.textContent = ''; return; }
    count.textContent = 'counting…';
    countTimer = setTimeout(async () => {
      const seq = ++countSeq;
      try {
        const res = await api('GET', `/silences/preview${qs(matchers)}`);
        if (seq !== countSeq) return;
        draft.openMatching = res && typeof res.open_matching === 'number' ? res.open_matching : null;
        count.textContent = draft.openMatching === null ? '' : `(${fmtNum(draft.openMatching)} open now)`;
      } catch (err) {
        if (seq === countSeq) count.textContent = err.status === 401 ? '' : '(could not count)';
      }
    }, COUNT_PAUSE_MS);
  };

  const rows = MATCHERS.map(([key, label]) => {
    const on = el('input', { type: 'checkbox', 'aria-label': `Match the ${label.toLowerCase()}`, 'data-matcher': key });
    on.checked = draft.use[key];
    on.addEventListener('change', () => { draft.use[key] = on.checked; showPreview(); refreshCount(); });
    let value;
    if (key === 'title') {
      value = el('input', { type: 'text', 'aria-label': 'Title, exact or with * for any text', 'data-field': 'title', spellcheck: 'false' });
      value.value = draft.matchers.title;
      value.addEventListener('input', () => { draft.matchers.title = value.value; draft.use.title = true; on.checked = true; showPreview(); refreshCount(); });
    } else {
      value = el('span', { class: 'matcher-value', text: String(draft.matchers[key] ?? '') });
    }
    return el('label', { class: 'silence-matcher' }, on, el('span', { text: label }), value);
  });

  const comment = el('textarea', { placeholder: 'Why, and who asked (required)', maxlength: '2000', 'aria-label': 'Comment', 'data-field': 'comment' });
  comment.value = draft.comment;
  comment.addEventListener('input', () => { draft.comment = comment.value; submit.disabled = !Object.keys(matchersOf(draft)).length || !draft.comment.trim(); });
  resolve.addEventListener('change', () => { draft.resolve = resolve.checked; });

  const durations = el('div', { class: 'seg', role: 'group', 'aria-label': 'For how long' }, DURATIONS.map(([value, label]) => el('button', {
    type: 'button', 'data-duration': value, 'aria-pressed': String(draft.duration === value), text: label,
    onclick: (e) => {
      draft.duration = value;
      for (const b of e.currentTarget.parentNode.children) b.setAttribute('aria-pressed', String(b.dataset.duration === value));
    },
  })));

  submit.addEventListener('click', async () => {
    submit.disabled = true;
    const body = silenceBody(draft);
    try {
      const res = await api('POST', '/silences', body);
      drafts.delete(id);
      const resolved = res && typeof res.resolved === 'number' ? res.resolved : 0;
      toast(`Silenced ${describeMatchers(body)} for ${DURATIONS.find(([v]) => v === body.duration)[1]}${resolved ? ` · resolved ${fmtNum(resolved)} open signal${resolved === 1 ? '' : 's'}` : ''}`);
      cards.load();
      changed(id, true);
    } catch (err) {
      if (err.status === 401) return;
      draft.error = `Could not create the silence. ${advice(err)}`;
      error.textContent = draft.error;
      error.hidden = false;
      submit.disabled = false;
    }
  });

  showPreview();
  refreshCount();
  return el('section', { class: 'silence-form', 'aria-label': 'Silence signals like this one' },
    el('h4', { text: 'Silence signals like this' }),
    ...rows, preview,
    el('div', { class: 'silence-actions' }, el('span', { class: 'muted', text: 'For' }), durations),
    comment,
    el('label', {}, resolve, ' Also resolve the open signals it matches ', count),
    error,
    el('div', { class: 'silence-actions' }, submit,
      el('button', { type: 'button', class: 'btn btn-small btn-ghost', text: 'Cancel', onclick: () => { drafts.delete(id); changed(id, false); } })));
}
