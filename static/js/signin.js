// Which view shows (connecting, the sign-in form, the console), signing in and out, and
// returning to the form when the session expires mid-work.
import { advice, canWrite, forgetSession, resumeSession, signIn, signOut, whenSessionLost, whoIsSignedIn } from './api.js';
import { $, setText } from './dom.js';

const LOGIN_REASON = 'Use your own key (analyst or viewer), or the admin key of this Santamon backend.';

let signedIn = false;
let hooks = { enter() {}, leave() {}, signedOut() {} };

export const isSignedIn = () => signedIn;

function showView(name) {
  $('#boot-view').hidden = name !== 'boot';
  $('#login-view').hidden = name !== 'login';
  $('#console-view').hidden = name !== 'console';
  $('#session-controls').hidden = name !== 'console';
}

function showLogin(reason) {
  signedIn = false;
  forgetSession();
  hooks.leave();
  showView('login');
  setText('login-reason', reason || LOGIN_REASON);
  $('#login-reason').classList.toggle('form-error', Boolean(reason));
  const key = $('#login-key');
  key.value = '';
  key.focus();
}

function sessionExpired() {
  if (!signedIn) return;
  showLogin('Your session has expired. Sign in again to continue where you left off.');
}

// Who is signed in, in the top bar; a read-only key's console leaves out what would change
// anything (the server refuses it anyway).
function showWho() {
  const { actor, role } = whoIsSignedIn();
  setText('whoami', role === 'viewer' ? `${actor} · viewer (read-only)` : `${actor} · ${role}`);
  document.body.classList.toggle('read-only', !canWrite());
}

function enterConsole() {
  signedIn = true;
  showWho();
  // The sign-in button just vanished; keys like j/k/Enter belong to the queue now.
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
  showView('console');
  hooks.enter();
}

async function onLogin(event) {
  event.preventDefault();
  const input = $('#login-key');
  const errorBox = $('#login-error');
  const key = input.value.trim();
  errorBox.hidden = true;
  if (!key) {
    errorBox.textContent = 'Enter your key.';
    errorBox.hidden = false;
    return;
  }
  const submit = $('#login-submit');
  submit.disabled = true;
  submit.textContent = 'Signing in…';
  try {
    await signIn(key);
    input.value = '';
    enterConsole();
  } catch (err) {
    errorBox.textContent = err.status === 401
      ? 'That key was not accepted. Use your own key or the admin key (agent keys cannot sign in).'
      : err.status === 429 ? 'Too many attempts. Wait a minute and try again.'
        : `Sign-in failed: ${err.message}.`;
    errorBox.hidden = false;
    input.select();
  } finally {
    submit.disabled = false;
    submit.textContent = 'Sign in';
  }
}

async function onLogout() {
  await signOut();
  hooks.signedOut();
  showLogin();
  setText('login-reason', 'Signed out.');
}

// Resume the session of an earlier visit, or show the form. `enter` runs on every way into
// the console, `leave` on every way out, `signedOut` when the analyst signs out.
export async function start({ enter, leave, signedOut }) {
  hooks = { enter, leave, signedOut };
  $('#login-form').addEventListener('submit', onLogin);
  $('#logout').addEventListener('click', onLogout);
  whenSessionLost(sessionExpired);
  try {
    await resumeSession();
    enterConsole();
  } catch (err) {
    showLogin(err.status === 401 || err.status === 403 ? '' : `${advice(err)} Reload the page to try again.`);
  }
}
