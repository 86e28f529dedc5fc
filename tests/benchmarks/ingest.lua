-- wrk script: one agent-shaped signal per request (or arrays of N with "batch", or an agent's
-- heartbeat with "heartbeat", sent to /agents/heartbeat).
--   wrk -t2 -c32 -d10s -s ingest.lua http://127.0.0.1:PORT/ingest -- MODE NONCE APIKEY ACKDIR [BATCH]
-- MODE: single | batch | heartbeat.  NONCE: 8 hex chars unique per wrk run; ids are NONCE and
-- 24 random hex digits (32 in all, like the agent's random ids: each takes a random place in
-- the id index, as in production), so they are unique across threads, connections and runs.  Each thread
-- appends the ids the server acknowledged with a 2xx to ACKDIR/acked-NONCE-THREAD.txt (checked
-- against the DB).
-- done() prints one line "BENCH_RESULT {json}" with counts and latency percentiles (us).

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

local mode, nonce, ackdir, batch
local counter = 0
local tails
-- globals, so done() can read them with thread:get()
ok2xx, non2xx, acked = 0, 0, 0
local ackfile

local offsets = {"-08:00", "-07:00", "-05:00", "-04:00", "Z", "+00:00", "+01:00", "+02:00",
                 "+05:30", "+09:00", "+10:00", "-03:00"}
local fraction = "120934551"
local rules = {
  {"SM-002", "critical", "SSH private keys read by non-ssh process",
   '"rule_description":"Any non-ssh process reading ~/.ssh key material.",',
   '["T1552.004","credential-access"]', "file_access"},
  {"SM-004", "high", "Browser cookies read by unexpected process",
   '"rule_description":"Cookie stores read outside the browser.",',
   '["T1539","credential-access"]', "file_access"},
  {"SM-011", "medium", "Unsigned binary executed from Downloads", "", "null", "execution"},
  {"SM-017", "low", "Launch agent written", '"rule_description":"Persistence via LaunchAgents.",',
   '["T1543.001","persistence"]', "file_access"},
  {"SM-021", "info", "New kernel extension load attempt", "", '["kext"]', "execution"},
}

local template = '{"signal_id":"%s","ts":"%s","host_id":"%s","rule_id":"%s",%s'
  .. '"status":"open","severity":"%s","title":"%s","tags":%s,"context":{'
  .. '"actor_path":"/usr/local/bin/python3.12","actor_signing_id":"org.python.python",'
  .. '"target_path":"/Users/%s/.ssh/id_ed25519","decision":"POLICY_DECISION_ALLOWED_AUDIT_ONLY",'
  .. '"kind":"%s","spool_archive_path":"/var/lib/santamon/spool_hits/spool_%06d.pb",'
  .. '"execution.args":["python3","exfil.py"],"process_tree":['
  .. '{"relation":"target","depth":0,"pid":%d,"pidversion":3,"path":"/usr/local/bin/python3.12",'
  .. '"user":"%s","uid":501,"group":"staff","gid":20,"session_id":100,'
  .. '"start_time":"2026-11-03T14:22:05.5-08:00","args":["python3","exfil.py"]},'
  .. '{"relation":"parent","depth":1,"pid":4100,"pidversion":1,"path":"/bin/zsh","user":"%s",'
  .. '"uid":501,"group":"staff","gid":20,"session_id":100,"start_time":"2026-11-03T09:00:00-08:00"},'
  .. '{"relation":"ancestor","depth":2,"pid":801,"pidversion":1,'
  .. '"path":"/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal","user":"%s",'
  .. '"uid":501,"group":"staff","gid":20,"session_id":100,"start_time":"2026-11-03T08:59:58-08:00"},'
  .. '{"relation":"ancestor","depth":3,"pid":1,"pidversion":1,"path":"/sbin/launchd","user":"root",'
  .. '"uid":0,"group":"wheel","gid":0,"session_id":1,"start_time":"2026-11-01T07:00:00-08:00"}]}}'

local function random_id()
  local r = math.random
  return nonce .. string.format("%06x%06x%06x%06x", r(0, 0xffffff), r(0, 0xffffff),
                                r(0, 0xffffff), r(0, 0xffffff))
end

local function signal()
  counter = counter + 1
  local c = counter
  local id = random_id()
  local digits = c % 10
  local frac = ""
  if digits > 0 then frac = "." .. string.sub(fraction, 1, digits) end
  local ts = string.format("2026-11-%02dT%02d:%02d:%02d%s%s", 1 + c % 28, c % 24, c % 60,
                           (c * 7) % 60, frac, offsets[1 + c % #offsets])
  local user = string.format("user%04d", c % 2000)
  local host = "mbp-" .. user
  local r = rules[1 + c % #rules]
  return string.format(template, id, ts, host, r[1], r[4], r[2], r[3], r[5], user, r[6],
                       c % 1000000, 4000 + c % 60000, user, user, user)
end

-- 2,000 agents as the signals' hosts, each beat with a Go timestamp in a local offset
local function heartbeat()
  counter = counter + 1
  local c = counter
  local ts = string.format("2026-11-%02dT%02d:%02d:%02d.%s%s", 1 + c % 28, c % 24, c % 60,
                           (c * 7) % 60, string.sub(fraction, 1, 1 + c % 9),
                           offsets[1 + c % #offsets])
  return string.format('{"agent_id":"mbp-user%04d","timestamp":"%s","version":"v0.3.1",'
                       .. '"os_version":"15.4.1","uptime_seconds":%d.25}', (c * 7 + tid) % 2000,
                       ts, 3600 + c)
end

function init(args)
  mode = args[1] or "single"
  nonce = args[2] or "00000000"
  wrk.headers["X-API-Key"] = args[3] or ""
  ackdir = args[4]
  batch = tonumber(args[5] or "500")
  math.randomseed(tonumber(nonce, 16) + tid * 65537)  -- a sequence of its own per thread and run
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "github.com/0x4d31/santamon/bench"
  if ackdir and ackdir ~= "" then
    -- fully buffered; stdio flushes it when wrk exits
    ackfile = io.open(string.format("%s/acked-%s-%d.txt", ackdir, nonce, tid), "w")
    ackfile:setvbuf("full", 65536)
  end
end

function request()
  local body
  if mode == "batch" then
    -- the 500 bodies are formatted once per thread; each request only puts in fresh ids,
    -- so the load generator does not starve the server of the machine's two cores
    if not tails then
      tails = {}
      for i = 1, batch do tails[i] = string.sub(signal(), 47) end
    end
    local items = {}
    for i = 1, batch do
      items[i] = '{"signal_id":"' .. random_id() .. tails[i]
    end
    body = "[" .. table.concat(items, ",") .. "]"
  elseif mode == "heartbeat" then
    body = heartbeat()
  else
    body = signal()
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
    for id in string.gmatch(body, '"signal_id":"([^"]+)"') do
      acked = acked + 1
      if ackfile then ackfile:write(id, "\n") end
    end
  else
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local t_ok, t_bad, t_acked = 0, 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + (t:get("ok2xx") or 0)
    t_bad = t_bad + (t:get("non2xx") or 0)
    t_acked = t_acked + (t:get("acked") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,"ok_2xx":%d,"non_2xx":%d,'
    .. '"acked_ids":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,'
    .. '"err_timeout":%d,"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,'
    .. '"p99_us":%d,"p999_us":%d}\n',
    summary.duration, summary.requests, summary.bytes, t_ok, t_bad, t_acked, e.connect, e.read,
    e.write, e.status, e.timeout, latency.mean, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
