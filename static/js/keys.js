// The agent keys panel: every key with its host, state and last use; creating one (the key is
// shown once, with a copy button) and revoking one (after a second click that confirms it).
// A read-only key sees the list only.
import { advice, api, canWrite, isPlainObject } from './api.js';
import { $, el, setText, toast } from './dom.js';
import { fmtAgo, fmtNum, fmtUtc, parseTs } from './format.js';

const STATE_TEXT = { active: 'active', expiring: 'expiring', expired: 'expired', revoked: 'revoked' };
let confirming = null; // the key id whose revocation waits for its confirming click

const text = (v) => (typeof v === 'string' ? v : '');
const when = (v) => (Number.isFinite(parseTs(v)) ? `${fmtUtc(parseTs(v))} UTC` : '');

function stateCell(key) {
  const state = Object.hasOwn(STATE_TEXT, key.state) ? key.state : 'unknown';
  let detail = '';
  if (state === 'expiring') detail = ` until ${when(key.expires_at)}`;
  if (state === 'revoked') detail = ` by ${text(key.revoked_by)}`;
  return el('td', { class: `key-state key-${state}`, title: state === 'revoked' ? when(key.revoked_at) : '' },
    el('span', { class: 'key-badge', text: STATE_TEXT[state] || 'unknown' }), detail);
}

function actionCell(key) {
  const cell = el('td', { class: 'key-actions needs-write' });
  if (key.state !== 'active' && key.state !== 'expiring') return cell;
  const id = text(key.key_id);
  if (confirming === id) {
    cell.append(
      el('button', {
        type: 'button', class: 'btn btn-small btn-danger', text: 'Confirm revoke', 'data-confirm-revoke': id,
        onclick: () => revoke(id, text(key.host_id)),
      }),
      el('button', { type: 'button', class: 'btn btn-ghost btn-small', text: 'Cancel', onclick: () => { confirming = null; load(); } }));
  } else {
    cell.append(el('button', {
      type: 'button', class: 'btn btn-small', text: 'Revoke', 'data-revoke': id,
      title: `Revoke this key: ${text(key.host_id)} can no longer send with it`,
      onclick: () => { confirming = id; load(); },
    }));
  }
  return cell;
}

function renderKey(key) {
  const used = parseTs(key.last_used_at);
  return el('tr', { 'data-key': text(key.key_id), 'data-host': text(key.host_id) },
    el('td', { class: 'mono', text: text(key.host_id) }),
    el('td', { class: 'mono', text: text(key.key_id), title: key.replaces ? `replaces ${text(key.replaces)}` : '' }),
    stateCell(key),
    el('td', { text: `${when(key.created_at)} by ${text(key.created_by)}` }),
    el('td', {
      class: 'key-used',
      text: Number.isFinite(used) ? `${fmtAgo(used)} from ${text(key.last_used_from) || 'an unknown address'}` : 'never',
      title: when(key.last_used_at),
    }),
    actionCell(key));
}

// Resolves to false when the keys could not be loaded.
export async function load() {
  let data;
  try {
    data = await api('GET', '/agent-keys?limit=2000');
  } catch (err) {
    if (err.status === 401) return false;
    const box = $('#keys-state');
    box.textContent = `Could not load the agent keys. ${advice(err)}`;
    box.hidden = false;
    return false;
  }
  const keys = (data && Array.isArray(data.keys) ? data.keys : []).filter(isPlainObject);
  const valid = keys.filter((k) => k.state === 'active' || k.state === 'expiring').length;
  setText('keys-meta', `${fmtNum(valid)} valid · ${fmtNum(keys.length - valid)} revoked or expired`);
  const box = $('#keys-state');
  box.textContent = 'No agent key yet: agents use the shared key (SANTAMON_API_KEY).';
  box.hidden = keys.length > 0;
  $('#keys-list').replaceChildren(...keys.map(renderKey));
  return true;
}

async function revoke(id, host) {
  confirming = null;
  try {
    await api('DELETE', `/agent-keys/${encodeURIComponent(id)}`);
    toast(`Revoked the key of ${host}`);
  } catch (err) {
    if (err.status !== 401) toast(`Could not revoke the key. ${advice(err)}`, true);
  }
  load();
}

function showIssued(key) {
  setText('key-issued-title', `New key for ${text(key.host_id)} (id ${text(key.key_id)}).`);
  $('#key-issued-value').value = text(key.key);
  $('#key-issued').hidden = false;
  $('#key-issued-value').select();
}

function hideIssued() {
  $('#key-issued-value').value = ''; // the key leaves the page once it was copied
  $('#key-issued').hidden = true;
}

async function onCreate(event) {
  event.preventDefault();
  const input = $('#keys-host');
  const errorBox = $('#keys-error');
  const host = input.value.trim();
  errorBox.hidden = true;
  if (!host) {
    errorBox.textContent = 'Enter the host id the agent sends (usually its hostname).';
    errorBox.hidden = false;
    return;
  }
  const submit = $('#keys-create-submit');
  submit.disabled = true;
  try {
    const data = await api('POST', '/agent-keys', { host_ids: [host] });
    const key = data && Array.isArray(data.keys) ? data.keys.find(isPlainObject) : null;
    if (!key) throw new Error('the server did not answer with a key');
    input.value = '';
    showIssued(key);
    load();
  } catch (err) {
    if (err.status !== 401) {
      errorBox.textContent = `Could not create the key. ${err.status ? advice(err) : err.message}`;
      errorBox.hidden = false;
    }
  } finally {
    submit.disabled = false;
  }
}

async function copyIssued() {
  const value = $('#key-issued-value').value;
  try {
    await navigator.clipboard.writeText(value);
    toast('Copied the key');
  } catch {
    $('#key-issued-value').select();
    toast('The browser did not allow copying; the key is selected: copy it with the keyboard.', true);
  }
}

export function isOpen() {
  return !$('#keys-panel').hidden;
}

export function toggle(open = !isOpen()) {
  $('#keys-panel').hidden = !open;
  $('#keys-toggle').setAttribute('aria-expanded', String(open));
  if (open) {
    load();
    $('#keys-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
    if (canWrite()) $('#keys-host').focus();
  } else {
    confirming = null;
    hideIssued();
  }
}

export function init() {
  $('#keys-toggle').addEventListener('click', () => toggle());
  $('#keys-close').addEventListener('click', () => toggle(false));
  $('#keys-create').addEventListener('submit', onCreate);
  $('#key-issued-copy').addEventListener('click', copyIssued);
  $('#key-issued-done').addEventListener('click', hideIssued);
}

// Signed out: nothing of the keys stays on the page.
export function clear() {
  toggle(false);
  $('#keys-list').replaceChildren();
}
