// The API client: same-origin requests with the session cookie, the session's CSRF token on
// every write, who is signed in, and errors turned into one sentence the analyst can act on.

let csrfToken = null;
let signedIn = { actor: '', role: '' };
let sessionLost = () => {};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// Answers are checked for their shape before use: they carry what agents sent.
export const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'the server cannot be reached');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const message = (data && typeof data.error === 'string') ? data.error : `HTTP ${res.status}`;
    if (res.status === 401 && path !== '/session') sessionLost();
    throw new ApiError(res.status, message, data);
  }
  return data;
}

// `callback` runs when a request finds the session gone (expired, or the server restarted).
export function whenSessionLost(callback) {
  sessionLost = callback;
}

function keepSession(data) {
  csrfToken = data.csrf_token;
  signedIn = {
    actor: typeof data.actor === 'string' ? data.actor : '',
    role: typeof data.role === 'string' ? data.role : '',
  };
}

export async function signIn(key) {
  keepSession(await api('POST', '/session', { key }));
}

// The session cookie of an earlier visit, if it is still good (else an ApiError).
export async function resumeSession() {
  keepSession(await api('GET', '/session'));
}

export async function signOut() {
  try { await api('DELETE', '/session'); } catch { /* the session is gone either way */ }
  forgetSession();
}

export function forgetSession() {
  csrfToken = null;
  signedIn = { actor: '', role: '' };
}

// Who is signed in ({ actor, role }); a viewer may read but change nothing. The server's 403
// is the real guard: the page only leaves out what would be refused.
export const whoIsSignedIn = () => signedIn;
export const canWrite = () => signedIn.role === 'admin' || signedIn.role === 'analyst';

// What went wrong, and what to do about it, in one sentence for the analyst.
export function advice(err) {
  if (err.status === 0) return 'The server cannot be reached. Check the network or the service; the console retries on its next refresh.';
  if (err.status === 422 || err.status === 400) {
    const detail = err.body && Array.isArray(err.body.details) && err.body.details[0];
    const field = detail && Array.isArray(detail.loc) ? detail.loc.join('.') : '';
    const msg = detail && typeof detail.msg === 'string' ? detail.msg : err.message;
    return `The server did not accept ${field ? `the ${field} filter` : 'the filters'}: ${msg}. Adjust it or clear the filters.`;
  }
  if (err.status === 403) {
    return signedIn.role === 'viewer'
      ? 'Your key is read-only (viewer): ask an analyst to make this change.'
      : 'The server refused the request. Sign out and in again.';
  }
  if (err.status === 503) return 'The database is unavailable right now. Try again in a few seconds.';
  if (err.status >= 500) return `The server had a problem (HTTP ${err.status}). Try again shortly; if it persists, check the service log.`;
  return `${err.message}.`;
}
