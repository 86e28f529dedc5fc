// Keeping the page current: everything at once on demand, and every 30 s while the tab is
// visible unless the analyst turned that off (remembered in this browser); the top bar says
// when the last refresh worked.
import { $ } from './dom.js';
import { fmtClock } from './format.js';

const REFRESH_MS = 30000;
const PREFERENCE_KEY = 'santamon.autoRefresh';

let parts = () => [];
let afterwards = () => {};
let isActive = () => false;
let autoRefresh = true;
let timer = null;

// One refresh of every panel; `reset` starts the queue from its first page.
async function refreshAll({ reset }) {
  const results = await Promise.allSettled(parts({ reset }));
  afterwards();
  if (!isActive()) return;
  const sync = $('#sync-status');
  if (results.some((r) => r.status === 'rejected' || r.value === false)) {
    sync.textContent = 'Update failed — retrying';
    sync.classList.add('is-error');
  } else {
    sync.textContent = `Updated ${fmtClock(Date.now())} UTC`;
    sync.classList.remove('is-error');
  }
}

function startTimer() {
  stop();
  if (!autoRefresh) return;
  timer = setInterval(() => {
    if (document.visibilityState === 'visible' && isActive()) refreshAll({ reset: false });
  }, REFRESH_MS);
}

// Into the console: everything from the first page, then every 30 s.
export function start() {
  refreshAll({ reset: true });
  startTimer();
}

export function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}

function readPreference() {
  try {
    return window.localStorage.getItem(PREFERENCE_KEY) !== 'off';
  } catch {
    return true;
  }
}

// `load({ reset })` starts the panels' loads (each resolves to false when it failed),
// `after` runs once they settle, `active` says whether the console is showing.
export function init({ load, after, active }) {
  parts = load;
  afterwards = after;
  isActive = active;
  autoRefresh = readPreference();
  const toggle = $('#auto-refresh');
  toggle.checked = autoRefresh;
  toggle.addEventListener('change', () => {
    autoRefresh = toggle.checked;
    try { window.localStorage.setItem(PREFERENCE_KEY, autoRefresh ? 'on' : 'off'); } catch { /* private mode */ }
    if (autoRefresh) { startTimer(); refreshAll({ reset: false }); } else stop();
  });
  $('#refresh-now').addEventListener('click', () => refreshAll({ reset: false }));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && isActive() && autoRefresh) refreshAll({ reset: false });
  });
}
