// Santamon signals console.
//
// Every value that comes from a signal is attacker-controlled (a stolen agent key can send any
// title or context), so this file only ever puts data into the page with textContent and
// DOM APIs; there is no innerHTML anywhere. The page talks to its own origin only.
'use strict';

(() => {
  const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
  const STATUSES = ['open', 'acknowledged', 'resolved'];
  const STATUS_LABEL = { open: 'open', acknowledged: 'acknowledged', resolved: 'resolved' };
  const WINDOWS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
  const CHART_BUCKET = { '1h': '5m', '24h': '1h', '7d': '1h', all: 'auto', custom: 'auto' };
  const PAGE_SIZE = 50;
  const MAX_LIMIT = 1000;
  const REFRESH_MS = 30000;
  const DEFAULT_FILTERS = Object.freeze({
    severity: [], status: 'open', host_id: '', rule_id: '', search: '', window: '24h', since: '', until: '',
  });

  const state = {
    csrf: null,
    filters: { ...DEFAULT_FILTERS },
    signals: [],
    nextCursor: null,
    selected: new Set(),
    expanded: new Set(),
    settled: new Set(),
    details: new Map(),
    focusId: null,
    queueSeq: 0,
    loadingMore: false,
    autoRefresh: true,
    timer: null,
    volume: null,
    agents: [],
    hoverBucket: -1,
    signedIn: false,
  };

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = String(value);
        else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
        else if (key in node && typeof value !== 'string') node[key] = value;
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    append(node, children);
    return node;
  }

  function setText(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value;
  }

  // ---------------------------------------------------------------- formatting

  const nf = new Intl.NumberFormat('en-US');
  const fmtNum = (n) => (typeof n === 'number' && Number.isFinite(n) ? nf.format(n) : '–');

  // The server sends fixed-width UTC (`2026-11-03T22:22:07.120934551Z`); Date only keeps ms.
  function parseTs(value) {
    if (typeof value !== 'string') return NaN;
    const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/.exec(value);
    if (!m) return Date.parse(value);
    const ms = (m[3] || '').slice(0, 3).padEnd(3, '0');
    return Date.parse(`${m[1]}T${m[2]}.${ms}${m[4] || 'Z'}`);
  }

  const pad = (n) => String(n).padStart(2, '0');
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  function fmtUtc(ms, withSeconds = true) {
    if (!Number.isFinite(ms)) return '—';
    const d = new Date(ms);
    const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${withSeconds ? `:${pad(d.getUTCSeconds())}` : ''}`;
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time}`;
  }

  function fmtShort(ms) {
    if (!Number.isFinite(ms)) return '—';
    const d = new Date(ms);
    const now = new Date();
    const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    if (d.getUTCFullYear() === now.getUTCFullYear() && d.getUTCMonth() === now.getUTCMonth()
        && d.getUTCDate() === now.getUTCDate()) return `today ${time}`;
    return `${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCDate())} ${time}`;
  }

  function fmtAgo(ms) {
    if (!Number.isFinite(ms)) return 'never';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 45) return `${s}s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min ago`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h ago`;
  }

  function fmtSilent(ms) {
    const minutes = Math.max(0, Math.floor((Date.now() - ms) / 60000));
    if (minutes < 120) return `silent for ${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `silent for ${hours} h ${minutes % 60} min`;
    return `silent for ${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  function fmtDuration(seconds) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) return null;
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    return `${m} min`;
  }

  function fmtBucketLabel(ms, bucketSeconds) {
    const d = new Date(ms);
    if (bucketSeconds < 86400) return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  }

  function basename(path) {
    if (typeof path !== 'string' || !path) return '';
    const parts = path.split('/').filter(Boolean);
    return parts.length ? parts[parts.length - 1] : path;
  }

  function shellJoin(args) {
    return args.map((a) => {
      const s = typeof a === 'string' ? a : JSON.stringify(a);
      return /^[\w@%+=:,./-]+$/.test(s) ? s : JSON.stringify(s);
    }).join(' ');
  }

  const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && method !== 'HEAD' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, 'the server cannot be reached');
    }
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const message = (data && typeof data.error === 'string') ? data.error : `HTTP ${res.status}`;
      const error = new ApiError(res.status, message, data);
      if (res.status === 401 && path !== '/session') sessionExpired();
      throw error;
    }
    return data;
  }

  // What went wrong, and what to do about it, in one sentence for the analyst.
  function advice(err) {
    if (err.status === 0) return 'The server cannot be reached. Check the network or the service; the console retries on its next refresh.';
    if (err.status === 422 || err.status === 400) {
      const detail = err.body && Array.isArray(err.body.details) && err.body.details[0];
      const field = detail && Array.isArray(detail.loc) ? detail.loc.join('.') : '';
      const msg = detail && typeof detail.msg === 'string' ? detail.msg : err.message;
      return `The server did not accept ${field ? `the ${field} filter` : 'the filters'}: ${msg}. Adjust it or clear the filters.`;
    }
    if (err.status === 403) return 'The server refused the request. Sign out and in again.';
    if (err.status === 503) return 'The database is unavailable right now. Try again in a few seconds.';
    if (err.status >= 500) return `The server had a problem (HTTP ${err.status}). Try again shortly; if it persists, check the service log.`;
    return `${err.message}.`;
  }

  function qs(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || value === '') continue;
      search.set(key, Array.isArray(value) ? value.join(',') : String(value));
    }
    const s = search.toString();
    return s ? `?${s}` : '';
  }

  // ---------------------------------------------------------------- session

  function showView(name) {
    $('#boot-view').hidden = name !== 'boot';
    $('#login-view').hidden = name !== 'login';
    $('#console-view').hidden = name !== 'console';
    $('#session-controls').hidden = name !== 'console';
  }

  function showLogin(reason) {
    state.signedIn = false;
    state.csrf = null;
    stopTimer();
    showView('login');
    setText('login-reason', reason || 'Use the analyst key of this Santamon backend.');
    $('#login-reason').classList.toggle('form-error', Boolean(reason));
    const key = $('#login-key');
    key.value = '';
    key.focus();
  }

  function sessionExpired() {
    if (!state.signedIn) return;
    showLogin('Your session has expired. Sign in again to continue where you left off.');
  }

  async function onLogin(event) {
    event.preventDefault();
    const input = $('#login-key');
    const errorBox = $('#login-error');
    const key = input.value.trim();
    errorBox.hidden = true;
    if (!key) {
      errorBox.textContent = 'Enter the analyst key.';
      errorBox.hidden = false;
      return;
    }
    const submit = $('#login-submit');
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const data = await api('POST', '/session', { key });
      input.value = '';
      state.csrf = data.csrf_token;
      enterConsole();
    } catch (err) {
      errorBox.textContent = err.status === 401
        ? 'That key was not accepted. Use the analyst key (agent keys cannot sign in).'
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
    try { await api('DELETE', '/session'); } catch { /* the session is gone either way */ }
    resetQueue();
    showLogin();
    setText('login-reason', 'Signed out.');
  }

  function enterConsole() {
    state.signedIn = true;
    // The sign-in button just vanished; keys like j/k/Enter belong to the queue now.
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    showView('console');
    applyFiltersToControls();
    refreshAll({ resetQueue: true });
    startTimer();
  }

  // ---------------------------------------------------------------- filters and URL

  function readFiltersFromUrl() {
    const params = new URLSearchParams(window.location.search);
    const f = { ...DEFAULT_FILTERS, severity: [] };
    const sev = (params.get('severity') || '').split(',').map((s) => s.trim()).filter((s) => SEVERITIES.includes(s));
    f.severity = SEVERITIES.filter((s) => sev.includes(s));
    const status = params.get('status');
    if (status && (STATUSES.includes(status) || status === 'all')) f.status = status;
    f.host_id = params.get('host_id') || '';
    f.rule_id = params.get('rule_id') || '';
    f.search = params.get('search') || '';
    const win = params.get('window');
    if (win && (win in WINDOWS || win === 'all' || win === 'custom')) f.window = win;
    f.since = params.get('since') || '';
    f.until = params.get('until') || '';
    if ((f.since || f.until) && !params.get('window')) f.window = 'custom';
    if (f.window !== 'custom') { f.since = ''; f.until = ''; }
    return f;
  }

  function writeFiltersToUrl() {
    const f = state.filters;
    const params = {
      severity: f.severity.length ? f.severity : '',
      status: f.status === DEFAULT_FILTERS.status ? '' : f.status,
      host_id: f.host_id,
      rule_id: f.rule_id,
      search: f.search,
      window: f.window === DEFAULT_FILTERS.window ? '' : f.window,
      since: f.window === 'custom' ? f.since : '',
      until: f.window === 'custom' ? f.until : '',
    };
    const url = `${window.location.pathname}${qs(params)}`;
    if (url !== `${window.location.pathname}${window.location.search}`) {
      window.history.replaceState(null, '', url);
    }
  }

  function windowRange() {
    const f = state.filters;
    const now = Date.now();
    if (f.window in WINDOWS) return { since: new Date(now - WINDOWS[f.window]).toISOString(), until: '' };
    if (f.window === 'custom') return { since: f.since, until: f.until };
    return { since: '', until: '' };
  }

  function applyFiltersToControls() {
    const f = state.filters;
    for (const b of $$('#f-severity [data-sev]')) b.setAttribute('aria-pressed', String(f.severity.includes(b.dataset.sev)));
    for (const b of $$('#f-status [data-status]')) b.setAttribute('aria-pressed', String(b.dataset.status === f.status));
    for (const b of $$('#f-window [data-window]')) b.setAttribute('aria-pressed', String(b.dataset.window === f.window));
    $('#custom-window').hidden = f.window !== 'custom';
    $('#f-since').value = isoToLocalInput(f.since);
    $('#f-until').value = isoToLocalInput(f.until);
    if (document.activeElement !== $('#f-host')) $('#f-host').value = f.host_id;
    if (document.activeElement !== $('#f-rule')) $('#f-rule').value = f.rule_id;
    if (document.activeElement !== $('#f-search')) $('#f-search').value = f.search;
  }

  // datetime-local inputs carry no zone; the console shows UTC everywhere, so they mean UTC.
  function isoToLocalInput(iso) {
    const ms = parseTs(iso);
    if (!Number.isFinite(ms)) return '';
    return new Date(ms).toISOString().slice(0, 19);
  }

  function localInputToIso(value) {
    if (!value) return '';
    const withSeconds = value.length === 16 ? `${value}:00` : value;
    const ms = Date.parse(`${withSeconds}Z`);
    return Number.isFinite(ms) ? new Date(ms).toISOString() : '';
  }

  function setFilters(patch, { chart = false } = {}) {
    Object.assign(state.filters, patch);
    if (state.filters.window !== 'custom') { state.filters.since = ''; state.filters.until = ''; }
    applyFiltersToControls();
    writeFiltersToUrl();
    loadSignals({ reset: true });
    if (chart) loadVolume();
  }

  function bindFilters() {
    $('#filters').addEventListener('submit', (e) => e.preventDefault());
    for (const b of $$('#f-severity [data-sev]')) {
      b.addEventListener('click', () => {
        const sev = b.dataset.sev;
        const set = new Set(state.filters.severity);
        if (set.has(sev)) set.delete(sev); else set.add(sev);
        setFilters({ severity: SEVERITIES.filter((s) => set.has(s)) });
      });
    }
    for (const b of $$('#f-status [data-status]')) {
      b.addEventListener('click', () => setFilters({ status: b.dataset.status }));
    }
    for (const b of $$('#f-window [data-window]')) {
      b.addEventListener('click', () => {
        const win = b.dataset.window;
        if (win === 'custom') {
          const until = new Date();
          const since = new Date(until.getTime() - 86400e3);
          const patch = { window: 'custom' };
          if (!state.filters.since) patch.since = since.toISOString().replace(/\.\d{3}Z$/, 'Z');
          if (!state.filters.until) patch.until = until.toISOString().replace(/\.\d{3}Z$/, 'Z');
          Object.assign(state.filters, patch);
          applyFiltersToControls();
          $('#f-since').focus();
          writeFiltersToUrl();
          loadSignals({ reset: true });
          loadVolume();
          return;
        }
        setFilters({ window: win }, { chart: true });
      });
    }
    $('#f-custom-apply').addEventListener('click', applyCustomWindow);
    for (const id of ['#f-since', '#f-until']) {
      $(id).addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); applyCustomWindow(); } });
    }

    const debounced = (fn, ms) => {
      let t = null;
      return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
    };
    const textFilter = (selector, key) => {
      const input = $(selector);
      const commit = () => {
        const value = input.value.trim();
        if (value !== state.filters[key]) setFilters({ [key]: value });
      };
      input.addEventListener('input', debounced(commit, 350));
      input.addEventListener('change', commit);
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') { e.preventDefault(); commit(); }
      });
    };
    textFilter('#f-host', 'host_id');
    textFilter('#f-rule', 'rule_id');
    textFilter('#f-search', 'search');

    $('#f-clear').addEventListener('click', () => {
      setFilters({ ...DEFAULT_FILTERS, severity: [] }, { chart: true });
    });

    window.addEventListener('popstate', () => {
      state.filters = readFiltersFromUrl();
      applyFiltersToControls();
      if (state.signedIn) { loadSignals({ reset: true }); loadVolume(); }
    });
  }

  function applyCustomWindow() {
    const since = localInputToIso($('#f-since').value);
    const until = localInputToIso($('#f-until').value);
    if (since && until && parseTs(since) >= parseTs(until)) {
      toast('The start of the window must be before its end.', true);
      return;
    }
    setFilters({ window: 'custom', since, until }, { chart: true });
  }

  // ---------------------------------------------------------------- refresh loop

  function startTimer() {
    stopTimer();
    if (!state.autoRefresh) return;
    state.timer = setInterval(() => {
      if (document.visibilityState === 'visible' && state.signedIn) refreshAll({ resetQueue: false });
    }, REFRESH_MS);
  }

  function stopTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  async function refreshAll({ resetQueue: reset }) {
    const results = await Promise.allSettled([
      loadStats(), loadAgents(), loadVolume(), loadSignals({ reset, quiet: !reset }),
    ]);
    loadJobs();
    const failed = results.find((r) => r.status === 'rejected' || r.value === false);
    const sync = $('#sync-status');
    if (!state.signedIn) return;
    if (failed) {
      sync.textContent = 'Update failed — retrying';
      sync.classList.add('is-error');
    } else {
      const now = new Date();
      sync.textContent = `Updated ${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())} UTC`;
      sync.classList.remove('is-error');
    }
  }

  // ---------------------------------------------------------------- background jobs

  // A failing stale-agent or forwarding job blinds the analyst quietly; say so in the top bar.
  async function loadJobs() {
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

  // ---------------------------------------------------------------- headline cards

  async function loadStats() {
    let stats;
    try {
      stats = await api('GET', '/stats');
    } catch (err) {
      if (err.status === 401) return false;
      setText('card-total-sub', `unavailable: ${err.message}`);
      return false;
    }
    renderStats(stats || {});
    return true;
  }

  function renderStats(stats) {
    setText('card-total-value', fmtNum(stats.total_signals));
    const byStatus = isPlainObject(stats.by_status) ? stats.by_status : {};
    setText('card-total-sub', STATUSES.map((s) => `${fmtNum(byStatus[s] || 0)} ${s === 'acknowledged' ? 'ack' : s}`).join(' · '));
    setText('card-24h-value', fmtNum(stats.last_24h));
    // by_host and top_rules are {name: count}, busiest first.
    const hosts = isPlainObject(stats.by_host) ? Object.entries(stats.by_host) : [];
    setText('card-24h-sub', hosts.length ? `top host, all time: ${hosts[0][0]} (${fmtNum(hosts[0][1])})` : '');

    const open = isPlainObject(stats.open_by_severity) ? stats.open_by_severity : null;
    const card = $('#card-open');
    if (open) {
      const crit = Number(open.critical || 0);
      const high = Number(open.high || 0);
      setText('card-open-value', fmtNum(crit + high));
      setText('card-open-sub', `${fmtNum(crit)} critical · ${fmtNum(high)} high`);
      card.classList.toggle('is-hot', crit + high > 0);
      // A background tab still says when something urgent is waiting.
      document.title = `${crit + high ? `(${crit + high}) ` : ''}Santamon · Signals`;
    }

    const agents = isPlainObject(stats.agents) ? stats.agents : {};
    const active = Number(agents.active || 0);
    const stale = Number(agents.stale || 0);
    const value = $('#card-agents-value');
    value.replaceChildren(fmtNum(active), ' / ', el('span', { class: stale ? 'stale-part' : '', text: fmtNum(stale) }));
    setText('card-agents-sub', `${fmtNum(agents.total ?? active + stale)} reporting agents`);
    $('#card-agents').classList.toggle('is-stale', stale > 0);

    fillDatalist('#host-options', hosts.map(([host]) => host));
    fillDatalist('#rule-options', isPlainObject(stats.top_rules) ? Object.keys(stats.top_rules) : []);
  }

  function fillDatalist(selector, values) {
    const list = $(selector);
    const seen = new Set($$('option', list).map((o) => o.value));
    for (const v of values) {
      if (typeof v === 'string' && v && !seen.has(v)) {
        seen.add(v);
        list.append(el('option', { value: v }));
      }
    }
  }

  function bindCards() {
    $('#card-total').addEventListener('click', () => setFilters({ ...DEFAULT_FILTERS, severity: [], status: 'all', window: 'all' }, { chart: true }));
    $('#card-24h').addEventListener('click', () => setFilters({ ...DEFAULT_FILTERS, severity: [], status: 'all', window: '24h' }, { chart: true }));
    $('#card-open').addEventListener('click', () => setFilters({ ...DEFAULT_FILTERS, severity: ['critical', 'high'], status: 'open', window: 'all' }, { chart: true }));
    $('#card-agents').addEventListener('click', () => $('#agents-panel').scrollIntoView({ behavior: 'smooth', block: 'start' }));
  }

  // ---------------------------------------------------------------- volume chart

  async function loadVolume() {
    const { since, until } = windowRange();
    const bucket = CHART_BUCKET[state.filters.window] || 'auto';
    try {
      const data = await api('GET', `/signals/volume${qs({ since, until, bucket })}`);
      state.volume = data && Array.isArray(data.buckets) ? data : { bucket_seconds: 3600, buckets: [] };
    } catch (err) {
      if (err.status === 401) return false;
      state.volume = null;
      const canvas = $('#chart-canvas');
      canvas.replaceChildren(el('div', { class: 'chart-empty', text: `Could not load the volume. ${advice(err)}` }));
      return false;
    }
    renderVolume();
    return true;
  }

  function renderVolume() {
    const data = state.volume;
    const canvas = $('#chart-canvas');
    if (!data) return;
    const buckets = data.buckets;
    const bucketSeconds = Number(data.bucket_seconds) || 3600;
    const totals = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    let max = 0;
    for (const b of buckets) {
      let sum = 0;
      for (const s of SEVERITIES) { const n = Number(b[s]) || 0; totals[s] += n; sum += n; }
      max = Math.max(max, sum);
    }
    const grand = SEVERITIES.reduce((acc, s) => acc + totals[s], 0);
    const legend = $('#volume-legend');
    legend.replaceChildren(...SEVERITIES.map((s) => el('span', { class: `legend-item sev-${s}` }, s, ' ', el('b', { text: fmtNum(totals[s]) }))));
    setText('volume-meta', `${fmtNum(grand)} signals · per ${bucketLabel(bucketSeconds)} · event time, UTC`);
    setReadout(-1);

    const width = Math.max(canvas.clientWidth, 200);
    const height = Math.max(canvas.clientHeight, 100);
    const padL = 34;
    const padR = 4;
    const padT = 6;
    const padB = 18;
    const plotW = width - padL - padR;
    const plotH = height - padT - padB;
    const top = niceCeil(max);
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Signal volume, ${grand} signals` });

    for (const frac of [0, 0.5, 1]) {
      const y = padT + plotH - frac * plotH;
      root.append(svg('line', { class: 'grid-line', x1: padL, x2: width - padR, y1: Math.round(y) + 0.5, y2: Math.round(y) + 0.5 }));
      if (top > 0 && (frac > 0 || max === 0)) {
        const label = svg('text', { class: 'axis-label', x: padL - 6, y: y + 3.5, 'text-anchor': 'end' });
        label.textContent = fmtNum(Math.round(top * frac));
        root.append(label);
      }
    }

    const n = buckets.length;
    if (n > 0) {
      const slot = plotW / n;
      const gap = slot > 6 ? Math.min(2, slot * 0.2) : 0;
      const barW = Math.max(slot - gap, 0.8);
      buckets.forEach((b, i) => {
        const x = padL + i * slot + gap / 2;
        let y = padT + plotH;
        for (const s of SEVERITIES) {
          const count = Number(b[s]) || 0;
          if (!count || !top) continue;
          const h = (count / top) * plotH;
          y -= h;
          root.append(svg('rect', { class: `bar sev-${s}`, x: x.toFixed(2), y: y.toFixed(2), width: barW.toFixed(2), height: Math.max(h, 1).toFixed(2) }));
        }
        const hit = svg('rect', { class: 'bucket-hit', x: (padL + i * slot).toFixed(2), y: padT, width: slot.toFixed(2), height: plotH, 'data-index': i });
        hit.addEventListener('mouseenter', () => setReadout(i));
        hit.addEventListener('mouseleave', () => setReadout(-1));
        hit.addEventListener('click', () => zoomToBucket(i));
        root.append(hit);
      });

      const labelEvery = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(plotW / 70))));
      buckets.forEach((b, i) => {
        if (i % labelEvery !== 0) return;
        const ms = parseTs(b.start);
        const label = svg('text', { class: 'axis-label', x: (padL + i * slot + slot / 2).toFixed(1), y: height - 4, 'text-anchor': i === 0 ? 'start' : 'middle' });
        if (i === 0) label.setAttribute('x', padL.toFixed(1));
        label.textContent = fmtBucketLabel(ms, bucketSeconds);
        root.append(label);
      });
    }

    const children = [root];
    if (grand === 0) children.push(el('div', { class: 'chart-empty', text: 'No signals in this window.' }));
    canvas.replaceChildren(...children);
  }

  function bucketLabel(seconds) {
    if (seconds % 86400 === 0) return seconds === 86400 ? 'day' : `${seconds / 86400} days`;
    if (seconds % 3600 === 0) return seconds === 3600 ? 'hour' : `${seconds / 3600} hours`;
    if (seconds % 60 === 0) return `${seconds / 60} min`;
    return `${seconds} s`;
  }

  function niceCeil(value) {
    if (value <= 0) return 0;
    if (value <= 4) return 4;
    const exp = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
    return 10 * exp;
  }

  function setReadout(index) {
    const readout = $('#chart-readout');
    for (const hit of $$('.bucket-hit.is-active')) hit.classList.remove('is-active');
    const data = state.volume;
    if (!data || index < 0 || index >= data.buckets.length) {
      const how = window.matchMedia('(hover: none)').matches ? 'Tap a bar to list its signals.' : 'Hover a bar for its counts; click it to list those signals.';
      readout.replaceChildren(el('span', { class: 'muted', text: how }));
      return;
    }
    const hit = $(`.bucket-hit[data-index="${index}"]`);
    if (hit) hit.classList.add('is-active');
    const b = data.buckets[index];
    const start = parseTs(b.start);
    const end = start + (Number(data.bucket_seconds) || 3600) * 1000;
    const total = SEVERITIES.reduce((acc, s) => acc + (Number(b[s]) || 0), 0);
    const parts = SEVERITIES.filter((s) => Number(b[s]) > 0).map((s) => `${b[s]} ${s}`);
    readout.replaceChildren(
      el('b', { text: `${fmtUtc(start, false)} – ${fmtUtc(end, false).slice(11)}` }),
      `  ·  ${fmtNum(total)} signal${total === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}`,
    );
  }

  function zoomToBucket(index) {
    const data = state.volume;
    if (!data) return;
    const start = parseTs(data.buckets[index].start);
    const end = start + (Number(data.bucket_seconds) || 3600) * 1000;
    const iso = (ms) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
    setFilters({ window: 'custom', since: iso(start), until: iso(end) }, { chart: false });
    $('#queue-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }

  // ---------------------------------------------------------------- agents

  async function loadAgents() {
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
    state.agents = data && Array.isArray(data.heartbeats) ? data.heartbeats : [];
    renderAgents();
    return true;
  }

  function agentSeenMs(a) {
    return parseTs(a.last_seen ?? a.received_at ?? a.timestamp);
  }

  function renderAgents() {
    const agents = state.agents.filter(isPlainObject);
    const stale = agents.filter((a) => a.status === 'stale');
    agents.sort((a, b) => {
      const sa = a.status === 'stale' ? 0 : 1;
      const sb = b.status === 'stale' ? 0 : 1;
      if (sa !== sb) return sa - sb;
      if (sa === 0) return agentSeenMs(a) - agentSeenMs(b);
      return String(a.agent_id).localeCompare(String(b.agent_id));
    });
    setText('agents-meta', `${fmtNum(agents.length - stale.length)} active · ${fmtNum(stale.length)} stale`);

    const box = $('#agents-state');
    if (!agents.length) {
      box.textContent = 'No agent has sent a heartbeat yet. Agents report every 30 seconds once they point at this server.';
      box.hidden = false;
    } else {
      box.hidden = true;
    }
    $('#agents').replaceChildren(...agents.map(renderAgent));
    fillDatalist('#host-options', agents.map((a) => String(a.agent_id)));

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

  function renderAgent(a) {
    const isStale = a.status === 'stale';
    const seen = agentSeenMs(a);
    const meta = [
      a.version ? String(a.version) : null,
      a.os_version ? `macOS ${a.os_version}` : null,
      fmtDuration(a.uptime_seconds) ? `up ${fmtDuration(a.uptime_seconds)}` : null,
    ].filter(Boolean).join(' · ');
    const item = el('li', {
      class: `agent${isStale ? ' is-stale' : ''}`,
      title: `Last heartbeat received ${fmtUtc(seen)} UTC${a.first_seen ? ` · first seen ${fmtUtc(parseTs(a.first_seen))} UTC` : ''}`,
      tabindex: '0',
      'aria-label': `${a.agent_id}: ${isStale ? 'stale' : 'active'}. Show its signals`,
      'data-agent': String(a.agent_id),
    },
    el('span', { class: 'agent-dot', 'aria-hidden': 'true' }),
    el('span', { class: 'agent-name', text: String(a.agent_id) }),
    el('span', { class: 'agent-seen', text: isStale ? fmtSilent(seen) : `seen ${fmtAgo(seen)}` }),
    el('span', { class: 'agent-meta', text: meta || 'no version reported' }));
    const pick = () => setFilters({ host_id: String(a.agent_id) });
    item.addEventListener('click', pick);
    item.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.stopPropagation(); pick(); } });
    return item;
  }

  function bindBanner() {
    $('#stale-banner-link').addEventListener('click', (e) => {
      e.preventDefault();
      setFilters({ ...DEFAULT_FILTERS, severity: [], rule_id: 'AGENT-STALE', status: 'open', window: 'all' }, { chart: true });
      $('#queue-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
    });
  }

  // ---------------------------------------------------------------- signal queue

  const rowEls = new Map();

  function resetQueue() {
    state.signals = [];
    state.nextCursor = null;
    state.selected.clear();
    state.expanded.clear();
    state.settled.clear();
    state.details.clear();
    state.focusId = null;
    rowEls.clear();
    $('#queue').replaceChildren();
    updateBulkbar();
  }

  function signalQuery(extra) {
    const f = state.filters;
    const { since, until } = windowRange();
    return qs({
      severity: f.severity.length ? f.severity : '',
      status: f.status,
      host_id: f.host_id,
      rule_id: f.rule_id,
      search: f.search,
      since,
      until,
      ...extra,
    });
  }

  function setQueueState(kind, title, message, action) {
    const box = $('#queue-state');
    if (!kind) { box.hidden = true; box.className = 'queue-state'; box.replaceChildren(); return; }
    box.className = `queue-state is-${kind}`;
    const children = [];
    if (kind === 'loading') children.push(el('span', { class: 'spinner', 'aria-hidden': 'true' }));
    children.push(el('strong', { text: title }));
    if (message) children.push(el('span', { text: message }));
    if (action) children.push(el('div', {}, el('button', { type: 'button', class: 'btn btn-small', text: action.label, onclick: action.run })));
    box.replaceChildren(...children);
    box.hidden = false;
  }

  async function loadSignals({ reset = false, quiet = false } = {}) {
    const seq = ++state.queueSeq;
    const previousIds = new Set(state.signals.map((s) => s.signal_id));
    let limit = PAGE_SIZE;
    const panel = $('#queue-panel');
    if (reset) {
      // The old rows stay, dimmed, until the new ones arrive: no flash on every filter click.
      panel.setAttribute('aria-busy', 'true');
      if (!state.signals.length) setQueueState('loading', 'Loading signals…');
      $('#load-more').hidden = true;
      setText('queue-end', '');
    } else {
      // A background refresh reloads everything already on screen so scrolled-to rows stay.
      limit = Math.min(MAX_LIMIT, Math.max(PAGE_SIZE, state.signals.length));
    }
    const done = () => { if (seq === state.queueSeq) panel.removeAttribute('aria-busy'); };
    let data;
    try {
      data = await api('GET', `/signals${signalQuery({ limit })}`);
    } catch (err) {
      done();
      if (seq !== state.queueSeq || err.status === 401) return false;
      if (reset) resetQueue();
      if (reset || !state.signals.length) {
        setQueueState('error', 'Could not load signals', advice(err),
          { label: 'Retry', run: () => loadSignals({ reset: true }) });
      } else if (!quiet) {
        toast(`Refresh failed: ${err.message}`, true);
      }
      return false;
    }
    if (seq !== state.queueSeq) return true;
    done();
    if (reset) resetQueue();
    const signals = (data && Array.isArray(data.signals) ? data.signals : []).filter((s) => isPlainObject(s) && typeof s.signal_id === 'string');
    const freshIds = reset ? new Set() : new Set(signals.filter((s) => !previousIds.has(s.signal_id)).map((s) => s.signal_id));
    if (!reset) {
      // Rows triaged out of the current filter leave on refresh; everything else is updated.
      state.settled.clear();
      const keep = new Set(signals.map((s) => s.signal_id));
      for (const id of [...state.selected]) if (!keep.has(id)) state.selected.delete(id);
      for (const id of [...state.expanded]) if (!keep.has(id)) state.expanded.delete(id);
      if (state.focusId && !keep.has(state.focusId)) state.focusId = null;
    }
    state.signals = signals;
    state.nextCursor = data && typeof data.next_cursor === 'string' ? data.next_cursor : null;
    renderQueue(freshIds);
    for (const id of state.expanded) loadDetail(id, { force: !reset });
    return true;
  }

  async function loadMore() {
    if (!state.nextCursor || state.loadingMore) return;
    const seq = state.queueSeq;
    state.loadingMore = true;
    const button = $('#load-more');
    button.disabled = true;
    button.textContent = 'Loading…';
    try {
      const data = await api('GET', `/signals${signalQuery({ limit: PAGE_SIZE, cursor: state.nextCursor })}`);
      if (seq !== state.queueSeq) return;
      const known = new Set(state.signals.map((s) => s.signal_id));
      const more = (Array.isArray(data.signals) ? data.signals : []).filter((s) => isPlainObject(s) && !known.has(s.signal_id));
      state.signals = state.signals.concat(more);
      state.nextCursor = typeof data.next_cursor === 'string' ? data.next_cursor : null;
      renderQueue(new Set());
    } catch (err) {
      if (err.status !== 401) toast(`Could not load more: ${err.message}`, true);
    } finally {
      state.loadingMore = false;
      button.disabled = false;
      button.textContent = 'Load more';
    }
  }

  function describeFilters() {
    const f = state.filters;
    const parts = [];
    if (f.status !== 'all') parts.push(f.status);
    if (f.severity.length) parts.push(f.severity.join('+'));
    if (f.host_id) parts.push(`host ${f.host_id}`);
    if (f.rule_id) parts.push(`rule ${f.rule_id}`);
    if (f.search) parts.push(`“${f.search}”`);
    return parts;
  }

  function renderQueue(freshIds) {
    const list = $('#queue');
    const filtersActive = describeFilters();
    if (!state.signals.length) {
      const f = state.filters;
      const onlyDefault = !f.severity.length && !f.host_id && !f.rule_id && !f.search;
      const windowText = f.window === 'all' ? '' : f.window === 'custom' ? ' in the custom window' : ` in the last ${f.window}`;
      if (onlyDefault && f.status === 'open') {
        setQueueState('empty', `No open signals${windowText}.`, 'All quiet. Widen the time window or look at acknowledged and resolved signals.',
          f.window === 'all' ? { label: 'Show all statuses', run: () => setFilters({ status: 'all' }) } : { label: 'Show all time', run: () => setFilters({ window: 'all' }, { chart: true }) });
      } else {
        setQueueState('empty', `No signals match${windowText}.`, `Filters: ${filtersActive.join(', ') || 'none'}.`,
          { label: 'Clear filters', run: () => setFilters({ ...DEFAULT_FILTERS, severity: [] }, { chart: true }) });
      }
    } else {
      setQueueState(null);
    }

    let prev = null;
    const present = new Set();
    for (const signal of state.signals) {
      const id = signal.signal_id;
      present.add(id);
      let row = rowEls.get(id);
      if (!row) {
        row = buildRow(signal);
        rowEls.set(id, row);
        if (freshIds.has(id)) row.classList.add('is-new');
      }
      updateRow(row, signal);
      const expected = prev ? prev.nextSibling : list.firstChild;
      if (expected !== row) list.insertBefore(row, expected);
      prev = row;
    }
    for (const [id, row] of rowEls) {
      if (!present.has(id)) { row.remove(); rowEls.delete(id); }
    }

    const loaded = state.signals.length;
    setText('queue-meta', loaded ? `${fmtNum(loaded)}${state.nextCursor ? '+' : ''} shown · newest first` : '');
    $('#load-more').hidden = !state.nextCursor;
    setText('queue-end', loaded && !state.nextCursor ? `End of the list · ${fmtNum(loaded)} signal${loaded === 1 ? '' : 's'}` : '');
    updateBulkbar();
  }

  function buildRow(signal) {
    const sev = SEVERITIES.includes(signal.severity) ? signal.severity : 'info';
    const ts = parseTs(signal.ts);
    const check = el('input', { type: 'checkbox', 'aria-label': 'Select signal', tabindex: '-1' });
    const status = el('span', { class: 'status-badge' });
    const row = el('div', { class: 'sig-row' },
      el('span', { class: 'sig-check' }, check),
      el('span', { class: 'sev-pill', text: String(signal.severity ?? 'unknown') }),
      el('time', { class: 'sig-time', datetime: String(signal.ts ?? ''), title: `${fmtUtc(ts)} UTC (${fmtAgo(ts)})`, text: fmtShort(ts) }),
      el('span', { class: 'sig-host', title: String(signal.host_id ?? ''), text: String(signal.host_id ?? '') }),
      el('span', { class: 'sig-rule', title: String(signal.rule_id ?? ''), text: String(signal.rule_id ?? '') }),
      el('span', { class: 'sig-title', title: String(signal.title ?? ''), text: String(signal.title ?? '') }),
      el('span', { class: 'sig-status' }, status));
    const li = el('li', { class: `sig sev-${sev}`, 'data-id': signal.signal_id }, row);
    li.refs = { check, status, row };

    check.addEventListener('click', (e) => {
      e.stopPropagation();
      toggleSelected(signal.signal_id, check.checked, e.shiftKey);
    });
    row.addEventListener('click', (e) => {
      if (e.target.closest('.sig-check')) { check.click(); return; }
      if (window.getSelection && String(window.getSelection()).length) return;
      setFocus(signal.signal_id, false);
      toggleExpanded(signal.signal_id);
    });
    return li;
  }

  function updateRow(li, signal) {
    const id = signal.signal_id;
    const { check, status } = li.refs;
    const st = String(signal.status ?? '');
    status.className = `status-badge status-${STATUSES.includes(st) ? st : 'unknown'}`;
    status.textContent = STATUS_LABEL[st] || st;
    check.checked = state.selected.has(id);
    li.classList.toggle('is-selected', state.selected.has(id));
    li.classList.toggle('is-focused', state.focusId === id);
    li.classList.toggle('is-settled', state.settled.has(id));
    li.refs.row.setAttribute('aria-expanded', String(state.expanded.has(id)));
    const open = state.expanded.has(id);
    let detail = li.querySelector(':scope > .sig-detail');
    if (open && !detail) {
      detail = el('div', { class: 'sig-detail' });
      li.append(detail);
      renderDetail(id);
    } else if (!open && detail) {
      detail.remove();
    }
  }

  function signalById(id) {
    return state.signals.find((s) => s.signal_id === id);
  }

  function refreshRow(id) {
    const signal = signalById(id);
    const row = rowEls.get(id);
    if (signal && row) updateRow(row, signal);
  }

  // ---------------------------------------------------------------- focus, selection, expansion

  function setFocus(id, scroll = true) {
    const previous = state.focusId;
    state.focusId = id;
    if (previous && previous !== id) refreshRow(previous);
    if (id) {
      refreshRow(id);
      const row = rowEls.get(id);
      if (row && scroll) row.querySelector('.sig-row').scrollIntoView({ block: 'nearest' });
    }
  }

  function moveFocus(delta) {
    if (!state.signals.length) return;
    let index = state.signals.findIndex((s) => s.signal_id === state.focusId);
    if (index < 0) index = delta > 0 ? 0 : state.signals.length - 1;
    else index = Math.min(state.signals.length - 1, Math.max(0, index + delta));
    setFocus(state.signals[index].signal_id);
    if (delta > 0 && index === state.signals.length - 1 && state.nextCursor) loadMore();
  }

  function toggleExpanded(id) {
    if (state.expanded.has(id)) state.expanded.delete(id);
    else { state.expanded.add(id); loadDetail(id); }
    refreshRow(id);
  }

  let lastSelectIndex = -1;
  function toggleSelected(id, on, range) {
    const index = state.signals.findIndex((s) => s.signal_id === id);
    const ids = range && lastSelectIndex >= 0
      ? state.signals.slice(Math.min(lastSelectIndex, index), Math.max(lastSelectIndex, index) + 1).map((s) => s.signal_id)
      : [id];
    for (const x of ids) { if (on) state.selected.add(x); else state.selected.delete(x); refreshRow(x); }
    lastSelectIndex = index;
    updateBulkbar();
  }

  function updateBulkbar() {
    const n = state.selected.size;
    const bar = $('#bulkbar');
    bar.classList.toggle('is-active', n > 0);
    setText('bulk-count', n ? `${fmtNum(n)} selected` : 'Select signals to triage several at once');
    $('#bulk-note').disabled = n === 0;
    for (const b of $$('[data-bulk]', bar)) b.disabled = n === 0;
    const all = $('#select-all');
    all.checked = n > 0 && state.signals.length > 0 && state.signals.every((s) => state.selected.has(s.signal_id));
    all.indeterminate = n > 0 && !all.checked;
    all.disabled = state.signals.length === 0;
  }

  function bindQueue() {
    $('#load-more').addEventListener('click', loadMore);
    $('#select-all').addEventListener('change', (e) => {
      if (e.target.checked) for (const s of state.signals) state.selected.add(s.signal_id);
      else state.selected.clear();
      for (const s of state.signals) refreshRow(s.signal_id);
      updateBulkbar();
    });
    for (const b of $$('#bulkbar [data-bulk]')) {
      b.addEventListener('click', () => bulkSetStatus(b.dataset.bulk));
    }
    $('#bulk-note').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); bulkSetStatus('acknowledged'); } });
  }

  // ---------------------------------------------------------------- triage

  function matchesStatusFilter(status) {
    return state.filters.status === 'all' || state.filters.status === status;
  }

  function applyLocalStatus(ids, status) {
    for (const id of ids) {
      const signal = signalById(id);
      if (!signal) continue;
      signal.status = status;
      if (matchesStatusFilter(status)) state.settled.delete(id); else state.settled.add(id);
      state.details.delete(id);
      refreshRow(id);
      if (state.expanded.has(id)) loadDetail(id, { force: true });
    }
  }

  async function setStatus(id, status, note) {
    const body = { status };
    if (note) body.note = note;
    try {
      // Not PATCH /signals/{id}/status: a path cannot name the signals `.` and `..`.
      const res = await api('POST', '/signals/status', { ...body, signal_ids: [id] });
      if (res && Array.isArray(res.not_found) && res.not_found.includes(id)) throw new ApiError(404, 'no such signal', res);
    } catch (err) {
      if (err.status !== 401) toast(`Could not set the status. ${advice(err)}`, true);
      return false;
    }
    applyLocalStatus([id], status);
    toast(`${verb(status)} 1 signal${matchesStatusFilter(status) ? '' : ' — it leaves this view on the next refresh'}`);
    loadStats();
    return true;
  }

  async function bulkSetStatus(status) {
    const ids = [...state.selected];
    if (!ids.length) return;
    const note = $('#bulk-note').value.trim();
    const buttons = $$('#bulkbar [data-bulk]');
    for (const b of buttons) b.disabled = true;
    try {
      const missing = new Set();
      let updated = 0;
      for (let start = 0; start < ids.length; start += MAX_LIMIT) {  // the API takes 1,000 a call
        const chunk = ids.slice(start, start + MAX_LIMIT);
        const body = { signal_ids: chunk, status };
        if (note) body.note = note;
        const res = await api('POST', '/signals/status', body);
        for (const id of Array.isArray(res && res.not_found) ? res.not_found : []) missing.add(id);
        updated += res && typeof res.updated === 'number' ? res.updated : chunk.length;
        applyLocalStatus(chunk.filter((id) => !missing.has(id)), status);
      }
      state.selected.clear();
      for (const id of ids) refreshRow(id);
      $('#bulk-note').value = '';
      toast(`${verb(status)} ${fmtNum(updated)} signal${updated === 1 ? '' : 's'}${missing.size ? ` · ${missing.size} no longer exist` : ''}`);
      loadStats();
    } catch (err) {
      if (err.status !== 401) toast(`Bulk update failed. ${advice(err)}`, true);
    } finally {
      updateBulkbar();
    }
  }

  function verb(status) {
    return status === 'acknowledged' ? 'Acknowledged' : status === 'resolved' ? 'Resolved' : 'Reopened';
  }

  // ---------------------------------------------------------------- detail

  async function loadDetail(id, { force = false } = {}) {
    if (!force && state.details.has(id)) { renderDetail(id); return; }
    const before = state.details.get(id);
    if (!before) renderDetail(id);
    let next;
    try {
      // Not /signals/{id}: the browser resolves the ids `.` and `..` (even as %2E%2E) away.
      const detail = await api('GET', `/signal${qs({ signal_id: id })}`);
      next = isPlainObject(detail) ? detail : {};
    } catch (err) {
      if (err.status === 401) return;
      next = { error: err.status === 404 ? 'This signal no longer exists.' : advice(err) };
    }
    // A refresh that changed nothing leaves the open sections and scroll positions alone.
    if (before && JSON.stringify(before) === JSON.stringify(next)) return;
    state.details.set(id, next);
    renderDetail(id);
  }

  function renderDetail(id) {
    const row = rowEls.get(id);
    const box = row && row.querySelector(':scope > .sig-detail');
    if (!box) return;
    const signal = signalById(id) || {};
    const detail = state.details.get(id);
    // Keep a note the analyst is typing across background refreshes.
    const draft = box.querySelector('textarea');
    const draftValue = draft ? draft.value : '';
    const draftFocused = draft && document.activeElement === draft;

    const data = detail && !detail.error ? { ...signal, ...detail } : signal;
    const context = isPlainObject(data.context) ? data.context : {};
    const main = el('div', { class: 'detail-main' });
    const side = el('div', { class: 'detail-side' });

    main.append(el('section', {},
      el('h3', { class: 'detail-title', text: String(data.title ?? '') }),
      el('p', {
        class: `detail-desc${data.rule_description ? '' : ' is-empty'}`,
        text: data.rule_description ? String(data.rule_description) : 'The rule has no description.',
      }),
      renderTags(data.tags)));

    const tree = renderProcessTree(context.process_tree);
    if (tree) main.append(el('section', {}, el('h4', { text: 'Process tree' }), tree));
    main.append(el('section', {}, el('h4', { text: 'Context' }), renderContext(context)));

    side.append(renderTriage(id, data.status, draftValue));
    side.append(el('section', {}, el('h4', { text: 'Signal' }), renderFacts(data)));
    const history = el('section', {}, el('h4', { text: 'History' }));
    if (!detail) history.append(el('div', { class: 'detail-loading' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…'));
    else if (detail.error) history.append(el('div', { class: 'detail-error', text: `Could not load the history: ${detail.error}` }));
    else history.append(renderHistory(detail.history));
    side.append(history);

    box.replaceChildren(main, side);
    if (draftFocused) {
      const area = box.querySelector('textarea');
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
    }
  }

  function renderTags(tags) {
    const list = Array.isArray(tags) ? tags : [];
    if (!list.length) return el('div', { class: 'tags' }, el('span', { class: 'muted', text: 'No tags' }));
    return el('div', { class: 'tags' }, list.map((t) => el('span', { class: 'tag', text: typeof t === 'string' ? t : JSON.stringify(t) })));
  }

  function renderProcessTree(tree) {
    if (!Array.isArray(tree)) return null;
    const nodes = tree.filter(isPlainObject).map((node, index) => ({ node, index }));
    if (!nodes.length) return null;
    // The agent lists the target first; draw the chain from the oldest ancestor down to it.
    nodes.sort((a, b) => {
      const da = Number.isFinite(Number(a.node.depth)) ? Number(a.node.depth) : a.index;
      const db = Number.isFinite(Number(b.node.depth)) ? Number(b.node.depth) : b.index;
      return db - da || b.index - a.index;
    });
    return el('ol', { class: 'ptree', 'aria-label': 'Process ancestry, oldest first' }, nodes.map(({ node }) => {
      const isTarget = node.relation === 'target' || Number(node.depth) === 0;
      const path = typeof node.path === 'string' ? node.path : '';
      const user = node.user !== undefined ? `${node.user}${node.uid !== undefined ? ` (${node.uid})` : ''}`
        : node.uid !== undefined ? `uid ${node.uid}` : null;
      const facts = [
        node.pid !== undefined ? `pid ${node.pid}` : null,
        node.pidversion !== undefined ? `v${node.pidversion}` : null,
        user,
      ].filter(Boolean).join(' · ');
      const args = Array.isArray(node.args) && node.args.length ? shellJoin(node.args) : null;
      const started = typeof node.start_time === 'string' ? parseTs(node.start_time) : NaN;
      return el('li', { class: `pnode${isTarget ? ' is-target' : ''}` },
        el('div', { class: 'pnode-card', title: Number.isFinite(started) ? `started ${fmtUtc(started)} UTC` : undefined },
          el('div', { class: 'pnode-head' },
            el('span', { class: 'pnode-rel', text: String(node.relation ?? (isTarget ? 'target' : 'ancestor')) }),
            el('span', { class: 'pnode-name', text: basename(path) || '(unknown)' }),
            el('span', { class: 'pnode-facts', text: facts })),
          el('div', { class: 'pnode-path', text: path || '(no path)' }),
          args ? el('div', { class: 'pnode-args', text: args }) : null));
    }));
  }

  const COLLAPSED_KEYS = new Set(['event', 'sample_event']);

  function renderContext(context) {
    const keys = Object.keys(context).filter((k) => k !== 'process_tree');
    const wrap = el('div', {});
    if (!keys.length) wrap.append(el('div', { class: 'muted', text: 'No context.' }));
    else {
      const dl = el('dl', { class: 'kv' });
      for (const key of keys) dl.append(el('dt', { text: key }), renderValue(key, context[key]));
      wrap.append(dl);
    }
    const raw = JSON.stringify(context, null, 2);
    wrap.append(el('details', { class: 'raw' },
      el('summary', {}, 'Raw JSON ', copyButton(() => raw, 'context JSON')),
      el('pre', { class: 'json', text: raw })));
    return wrap;
  }

  function renderValue(key, value) {
    if (value === null || value === undefined) return el('dd', { class: 'is-null', text: 'null' });
    if (typeof value !== 'object') return el('dd', { text: String(value) });
    if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) {
      if (!value.length) return el('dd', { class: 'is-null', text: '[ ]' });
      return el('dd', {}, value.map((v) => el('span', { class: 'token', text: v === null ? 'null' : String(v) })));
    }
    const json = JSON.stringify(value, null, 2);
    const pre = el('pre', { class: 'kv-nested', text: json });
    if (COLLAPSED_KEYS.has(key) || json.length > 600) {
      const count = Array.isArray(value) ? value.length : Object.keys(value).length;
      const size = `${count} ${Array.isArray(value) ? 'item' : 'field'}${count === 1 ? '' : 's'}`;
      return el('dd', {}, el('details', { class: 'nested' }, el('summary', { text: `${size} — show` }), pre));
    }
    return el('dd', {}, pre);
  }

  function renderTriage(id, status, draftValue) {
    const note = el('textarea', { placeholder: 'Note for the history (optional)', maxlength: '2000', 'aria-label': 'Triage note' });
    note.value = draftValue || '';
    const action = (target, label) => el('button', {
      type: 'button',
      class: `btn btn-small${target === 'resolved' ? ' btn-primary' : ''}`,
      text: label,
      disabled: status === target,
      'data-action': target,
      onclick: async (e) => {
        e.currentTarget.disabled = true;
        const ok = await setStatus(id, target, note.value.trim());
        if (ok) note.value = '';
      },
    });
    note.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) { e.preventDefault(); setStatus(id, status === 'resolved' ? 'open' : 'resolved', note.value.trim()); }
    });
    return el('section', { class: 'triage' },
      el('div', { class: 'triage-current' }, 'Status ', el('span', { class: `status-badge status-${STATUSES.includes(status) ? status : 'unknown'}`, text: String(status ?? '') })),
      note,
      el('div', { class: 'triage-actions' },
        action('acknowledged', 'Acknowledge'),
        action('resolved', 'Resolve'),
        action('open', 'Reopen')));
  }

  function renderFacts(data) {
    const rows = [
      ['Signal ID', data.signal_id],
      ['Host', data.host_id],
      ['Rule', data.rule_id],
      ['Severity', data.severity],
      ['Event time', Number.isFinite(parseTs(data.ts)) ? `${fmtUtc(parseTs(data.ts))} UTC` : data.ts],
      ['Received', Number.isFinite(parseTs(data.received_at)) ? `${fmtUtc(parseTs(data.received_at))} UTC` : data.received_at],
    ];
    if (data.shipped_at) rows.push(['Forwarded', `${fmtUtc(parseTs(data.shipped_at))} UTC`]);
    const pivots = {
      Host: (v) => ({ host_id: v }),
      Rule: (v) => ({ rule_id: v }),
    };
    const dl = el('dl', { class: 'facts' });
    for (const [k, v] of rows) {
      if (v === undefined || v === null) continue;
      let value = String(v);
      if (k in pivots) {
        value = el('button', {
          type: 'button', class: 'pivot', text: value, title: `Show only signals with this ${k.toLowerCase()}`,
          onclick: () => setFilters(pivots[k](String(v))),
        });
      } else if (k === 'Signal ID') {
        value = el('span', {}, value, ' ', copyButton(() => String(v), 'signal ID'));
      }
      dl.append(el('dt', { text: k }), el('dd', {}, value));
    }
    return dl;
  }

  function copyButton(getText, what) {
    return el('button', {
      type: 'button', class: 'copy', text: 'copy', title: `Copy the ${what}`,
      onclick: async (e) => {
        e.stopPropagation();
        try {
          await navigator.clipboard.writeText(getText());
          toast(`Copied the ${what}`);
        } catch {
          toast('The browser did not allow copying; select the text instead.', true);
        }
      },
    });
  }

  function renderHistory(history) {
    const entries = Array.isArray(history) ? history.filter(isPlainObject) : [];
    if (!entries.length) return el('div', { class: 'history-empty', text: 'No status changes yet.' });
    return el('ol', { class: 'history' }, entries.map((h) => el('li', {},
      el('div', {},
        el('span', { class: `status-badge status-${h.from_status}`, text: String(h.from_status ?? '—') }),
        ' → ',
        el('span', { class: `status-badge status-${h.to_status}`, text: String(h.to_status ?? '') }),
        h.actor ? el('span', { class: 'muted', text: ` by ${h.actor}` }) : null),
      el('div', { class: 'history-when', text: `${fmtUtc(parseTs(h.changed_at))} UTC` }),
      h.note ? el('div', { class: 'history-note', text: String(h.note) }) : null)));
  }

  // ---------------------------------------------------------------- keyboard

  function isTyping(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
    return target.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit'].includes(target.type);
  }

  function onKeydown(e) {
    if (!state.signedIn || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    if (isTyping(e.target)) {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    const focused = state.focusId && signalById(state.focusId);
    switch (e.key) {
      case 'j': moveFocus(1); break;
      case 'k': moveFocus(-1); break;
      case '/': $('#f-search').focus(); $('#f-search').select(); break;
      case 'Enter':
        if (e.target instanceof Element && e.target.closest('button, a, summary, .agent')) return;
        if (!focused) return;
        toggleExpanded(state.focusId);
        break;
      case 'x':
        if (!focused) return;
        toggleSelected(state.focusId, !state.selected.has(state.focusId), false);
        break;
      case 'a':
        if (!focused) return;
        setStatus(state.focusId, 'acknowledged', '');
        break;
      case 'r':
        if (!focused) return;
        setStatus(state.focusId, 'resolved', '');
        break;
      case 'o':
        if (!focused) return;
        setStatus(state.focusId, 'open', '');
        break;
      case 'Escape':
        if (state.focusId && state.expanded.has(state.focusId)) toggleExpanded(state.focusId);
        else if (state.selected.size) { state.selected.clear(); for (const s of state.signals) refreshRow(s.signal_id); updateBulkbar(); }
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  // ---------------------------------------------------------------- toast

  let toastTimer = null;
  function toast(message, isError = false) {
    const box = $('#toast');
    box.textContent = message;
    box.classList.toggle('is-error', isError);
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 3500);
  }

  // ---------------------------------------------------------------- start

  async function boot() {
    state.filters = readFiltersFromUrl();
    try {
      state.autoRefresh = window.localStorage.getItem('santamon.autoRefresh') !== 'off';
    } catch { state.autoRefresh = true; }
    $('#auto-refresh').checked = state.autoRefresh;

    $('#login-form').addEventListener('submit', onLogin);
    $('#logout').addEventListener('click', onLogout);
    $('#refresh-now').addEventListener('click', () => refreshAll({ resetQueue: false }));
    $('#auto-refresh').addEventListener('change', (e) => {
      state.autoRefresh = e.target.checked;
      try { window.localStorage.setItem('santamon.autoRefresh', state.autoRefresh ? 'on' : 'off'); } catch { /* private mode */ }
      if (state.autoRefresh) { startTimer(); refreshAll({ resetQueue: false }); } else stopTimer();
    });
    document.addEventListener('keydown', onKeydown);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && state.signedIn && state.autoRefresh) refreshAll({ resetQueue: false });
    });
    bindFilters();
    bindCards();
    bindBanner();
    bindQueue();
    if ('ResizeObserver' in window) {
      let last = 0;
      new ResizeObserver((entries) => {
        const width = Math.round(entries[0].contentRect.width);
        if (width !== last) { last = width; if (state.volume) renderVolume(); }
      }).observe($('#chart-canvas'));
    }

    try {
      const data = await api('GET', '/session');
      state.csrf = data.csrf_token;
      enterConsole();
    } catch (err) {
      showLogin(err.status === 401 || err.status === 403 ? '' : `${advice(err)} Reload the page to try again.`);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
