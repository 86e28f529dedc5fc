"""The maintenance jobs on the real APScheduler with sub-second intervals; thresholds are
crossed by moving an injected clock, not by waiting for the wall clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web

from santamon.api.state import LIVENESS
from santamon.app import create_app
from santamon.config import Settings
from santamon.jobs import forwarding
from santamon.jobs.forwarding import DeliveryError, FileSink, Forwarder, slack_message
from santamon.jobs.retention import prune
from santamon.store import NewSignal
from santamon.store.sqlite import SQLiteStore

from .helpers import AGENT, ANALYST, FakeClock, ServerProcess, free_port, make_signal, sample

FAST = {"stale_check_interval": 0.1, "retention_interval": 3600, "forward_interval": 0.1}


async def eventually(check: Callable[[], Awaitable[object]], within: float = 10.0) -> object:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def get(client, path, **params):
    response = await client.get(path, params=params, headers=ANALYST)
    assert response.status == 200, await response.text()
    return await response.json()


async def agent_status(client, agent_id):
    agents = (await get(client, "/agents"))["heartbeats"]
    return next(a for a in agents if a["agent_id"] == agent_id)


async def stale_alerts(client, agent_id):
    body = await get(client, "/signals", rule_id="AGENT-STALE", host_id=agent_id, status="all")
    return body["signals"]


async def job_state(client, job_id):
    return next(j for j in (await get(client, "/jobs"))["jobs"] if j["id"] == job_id)


async def test_stale_agent_one_alert_then_recovery(aiohttp_client, settings):
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings.model_copy(
        update={**FAST, "stale_after": 180}), clock=clock))
    beat = sample("heartbeat")
    clock.advance(200)  # the threshold has passed since the server started
    await client.post("/agents/heartbeat", json=beat, headers=AGENT)
    clock.advance(179)
    runs = (await job_state(client, "stale-agents"))["runs"]
    await eventually(lambda: _runs_past(client, "stale-agents", runs + 3))
    assert (await agent_status(client, "mbp-alice"))["status"] == "active"
    clock.advance(2)
    await eventually(lambda: _is(client, "mbp-alice", "stale"))
    agent = await agent_status(client, "mbp-alice")
    assert agent["stale_since"] is not None
    assert (await get(client, "/stats"))["agents"] == {"active": 0, "stale": 1, "total": 1}
    # many more checks run; still exactly one alert for this silence
    runs = (await job_state(client, "stale-agents"))["runs"]
    await eventually(lambda: _runs_past(client, "stale-agents", runs + 5))
    (alert,) = await stale_alerts(client, "mbp-alice")
    assert (alert["severity"], alert["status"]) == ("high", "open")
    assert "mbp-alice" in alert["title"]
    assert alert["context"]["last_seen"] == agent["last_seen"]
    assert alert["context"]["version"] == "v0.3.1"
    assert alert["context"]["threshold_seconds"] == 180
    assert "3 min" in alert["rule_description"]
    await client.patch(f"/signals/{alert['signal_id']}/status",
                       json={"status": "acknowledged"}, headers=ANALYST)

    # it comes back after 3 h 12 min of silence: active at once, in the heartbeat handler
    clock.advance(3 * 3600 + 12 * 60 - 181)
    await client.post("/agents/heartbeat", json=beat, headers=AGENT)
    agent = await agent_status(client, "mbp-alice")
    assert (agent["status"], agent["stale_since"]) == ("active", None)
    detail = await get(client, f"/signals/{alert['signal_id']}")
    assert detail["status"] == "acknowledged"  # the gap still deserves a look
    assert detail["history"][-1]["note"] == "reconnected after 3 h 12 min"
    assert detail["history"][-1]["actor"] == "system"

    # a new silence is a new alert
    clock.advance(181)
    await eventually(lambda: _is(client, "mbp-alice", "stale"))
    assert len(await stale_alerts(client, "mbp-alice")) == 2


async def _is(client, agent_id, status):
    return (await agent_status(client, agent_id))["status"] == status


async def _finished(client, job_id):
    return (await job_state(client, job_id))["last_outcome"] is not None


async def _runs_past(client, job_id, runs):
    return (await job_state(client, job_id))["runs"] >= runs


async def test_restart_raises_no_false_alerts(aiohttp_client, settings):
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings, clock=clock))
    await client.post("/agents/heartbeat", json=sample("heartbeat"), headers=AGENT)
    await client.close()
    # The server was down for an hour; the agent's last heartbeat is an hour old.
    clock.advance(3600)
    client = await aiohttp_client(create_app(settings.model_copy(
        update={**FAST, "stale_after": 180}), clock=clock))
    clock.advance(179)
    await eventually(lambda: _runs_past(client, "stale-agents", 5))
    assert (await agent_status(client, "mbp-alice"))["status"] == "active"
    assert await stale_alerts(client, "mbp-alice") == []
    # ...but it really is silent, so once the threshold has passed since the start it is stale
    clock.advance(2)
    await eventually(lambda: _is(client, "mbp-alice", "stale"))
    assert len(await stale_alerts(client, "mbp-alice")) == 1


async def test_retention_prunes_exactly_what_it_should(aiohttp_client, settings):
    old, recent = "2020-01-01T00:00:00.000000000Z", "2099-01-01T00:00:00.000000000Z"
    # every heartbeat in the history, each written on its own, so there is something to prune
    client = await aiohttp_client(create_app(settings.model_copy(
        update={"heartbeat_sample": 0})))
    for agent_id in ("mac-a", "mac-b"):
        for second in range(3):
            await client.post("/agents/heartbeat", headers=AGENT, json={
                "agent_id": agent_id, "timestamp": f"2026-01-01T00:00:0{second}Z"})
            await client.app[LIVENESS].flush()
    signals = {f"{status}-{age}": (status, age) for status in ("open", "acknowledged",
                                                               "resolved")
               for age in ("old", "new")}
    await client.post("/ingest", headers=AGENT, json=[
        make_signal(sid, ts="2020-01-01T00:00:00Z" if age == "old" else "2099-01-01T00:00:00Z")
        for sid, (status, age) in signals.items()] + [make_signal("newest-row")])
    for sid, (status, _age) in signals.items():
        if status != "open":
            await client.patch(f"/signals/{sid}/status", json={"status": status, "note": "n"},
                               headers=ANALYST)
    await client.close()
    with sqlite3.connect(settings.db_path) as conn:
        # mac-a's heartbeats are all old; mac-b has one recent one
        conn.execute("UPDATE heartbeats SET received_at = ?", (old,))
        conn.execute("UPDATE heartbeats SET received_at = ? WHERE agent_id = 'mac-b' AND "
                     "timestamp LIKE '%:02.%'", (recent,))
        conn.execute("UPDATE signals SET received_at = ? WHERE signal_id LIKE '%-old'", (old,))
        conn.execute("INSERT INTO shipped VALUES ('resolved-old', ?)", (old,))

    client = await aiohttp_client(create_app(settings.model_copy(update={
        "retention_interval": 0.2, "heartbeat_retention": 86400, "signal_retention": 86400})))
    await eventually(lambda: _finished(client, "retention"))
    state = await job_state(client, "retention")
    assert state["last_outcome"] == "ok", state
    with sqlite3.connect(settings.db_path) as conn:
        beats = conn.execute("SELECT agent_id, count(*) FROM heartbeats GROUP BY agent_id")
        assert dict(beats.fetchall()) == {"mac-a": 1, "mac-b": 1}  # each agent's latest kept
        left = {row[0] for row in conn.execute("SELECT signal_id FROM signals")}
        assert left == set(signals) - {"resolved-old"} | {"newest-row"}
        assert conn.execute("SELECT count(*) FROM signal_history WHERE signal_id = "
                            "'resolved-old'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM shipped").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM agents").fetchone() == (2,)


async def test_signal_retention_zero_keeps_everything(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        await _ingest_resolved(store, "x", 10, ts="2000-01-01T00:00:00.000000000Z")
        settings = Settings(api_key=["k" * 16], signal_retention=0)
        assert "0 resolved" in await prune(store, settings)
        assert len((await store.unshipped(100)).signals) == 10
    finally:
        await store.close()


async def _ingest_resolved(store, prefix, count, ts):
    ids = [f"{prefix}-{i}" for i in range(count)]
    await store.insert_signals([
        NewSignal(sid, ts, "h", "R", "low", "t", b"[]", b'{"blob": "' + b"x" * 2000 + b'"}',
                  None) for sid in ids])
    await store.set_status(ids, "resolved", None, "test")


async def test_database_file_stays_bounded_under_ingest_and_pruning(tmp_path):
    # Below the configurable minimum of 1 h, so the test need not wait that long.
    settings = Settings(api_key=["k" * 16]).model_copy(update={"signal_retention": 0.001})
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    sizes = []
    try:
        for round_ in range(8):
            await _ingest_resolved(store, f"r{round_}", 1000, ts="2000-01-01T00:00:00.0Z")
            with sqlite3.connect(tmp_path / "s.db") as conn:  # make them old enough
                conn.execute("UPDATE signals SET received_at = '2000-01-01T00:00:00.0Z'")
            await prune(store, settings)
            sizes.append((tmp_path / "s.db").stat().st_size
                         + (tmp_path / "s.db-wal").stat().st_size)
    finally:
        await store.close()
    assert sizes[-1] <= sizes[1] * 1.25, sizes


async def test_forwarding_delivers_each_signal_once_signed(aiohttp_client, settings, receiver,
                                                          tmp_path):
    secret = "webhook-secret-0123456789"
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "forward_webhook_url": receiver.url, "forward_webhook_secret": secret,
        "forward_file": tmp_path / "signals.jsonl", "forward_min_severity": "medium"})))
    await client.post("/ingest", headers=AGENT, json=[
        make_signal(f"f-{i}", severity=("low", "medium", "high", "critical")[i % 4])
        for i in range(40)])
    wanted = {f"f-{i}" for i in range(40) if i % 4}
    await eventually(lambda: _received(receiver, len(wanted)))
    await asyncio.sleep(0.5)  # several more forwarder runs: nothing is sent twice
    assert sorted(receiver.ids()) == sorted(wanted)
    for body, headers, signal in zip(receiver.bodies, receiver.headers, receiver.received,
                                     strict=True):
        # Signed over `timestamp.body`, so a captured request cannot be replayed later.
        timestamp = headers["X-Santamon-Timestamp"]
        assert abs(int(timestamp) - time.time()) < 60
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        assert headers["X-Santamon-Signature"] == f"sha256={expected}"
        assert signal["signal_id"] == headers["X-Santamon-Signal-Id"]
        assert signal["context"]["process_tree"][0]["pid"] == 4242
    lines = (tmp_path / "signals.jsonl").read_bytes().splitlines()
    assert sorted(orjson.loads(line)["signal_id"] for line in lines) == sorted(wanted)
    shipped = await get(client, "/signals/f-1")
    assert shipped["shipped_at"] is not None
    assert (await get(client, "/signals/f-0"))["shipped_at"] is None  # below min severity
    jobs = await get(client, "/jobs")
    assert jobs["forwarding"]["backlog"] == 0
    assert {j["id"] for j in jobs["jobs"]} == {"stale-agents", "retention", "forward"}
    forward = next(j for j in jobs["jobs"] if j["id"] == "forward")
    assert forward["last_outcome"] == "ok" and forward["next_run"] is not None


async def _received(receiver, count):
    return len(receiver.received) >= count


async def test_forwarding_survives_a_failing_receiver(aiohttp_client, settings, receiver,
                                                     caplog):
    receiver.fail_with = 500
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "forward_webhook_url": receiver.url})))
    await client.post("/ingest", headers=AGENT, json=[make_signal(f"r-{i}") for i in range(15)])
    await eventually(lambda: _attempted(receiver, 30))
    await eventually(lambda: _failures(client, 3))
    jobs = await get(client, "/jobs")
    assert jobs["forwarding"]["backlog"] == 15
    assert jobs["forwarding"]["consecutive_failures"] >= 3
    assert "HTTP 500" in next(j for j in jobs["jobs"] if j["id"] == "forward")["last_message"]
    assert any("job forward failed" in r.message for r in caplog.records)
    # backoff: attempts slow down instead of hammering the receiver every 0.1 s
    before = receiver.attempts
    await asyncio.sleep(1.0)
    assert receiver.attempts - before < 15 * 10
    receiver.fail_with = None
    await eventually(lambda: _received(receiver, 15), within=20)
    await asyncio.sleep(0.3)
    assert sorted(receiver.ids()) == sorted(f"r-{i}" for i in range(15))
    assert (await get(client, "/jobs"))["forwarding"]["backlog"] == 0


async def _attempted(receiver, count):
    return receiver.attempts >= count


async def _failures(client, count):
    return (await job_state(client, "forward"))["consecutive_failures"] >= count


async def test_forwarding_survives_a_restart(aiohttp_client, settings, receiver):
    receiver.fail_with = 503
    changes = {**FAST, "forward_webhook_url": receiver.url}
    client = await aiohttp_client(create_app(settings.model_copy(update=changes)))
    await client.post("/ingest", headers=AGENT, json=[make_signal(f"x-{i}") for i in range(20)])
    await eventually(lambda: _attempted(receiver, 20))
    await client.close()
    receiver.fail_with = None
    client = await aiohttp_client(create_app(settings.model_copy(update=changes)))
    await eventually(lambda: _received(receiver, 20))
    await asyncio.sleep(0.3)
    assert sorted(receiver.ids()) == sorted(f"x-{i}" for i in range(20))


async def test_shutdown_lets_a_delivery_in_flight_finish(aiohttp_client, settings, receiver):
    """Stopping the service waits (bounded) for a running forwarder instead of closing the
    HTTP session and the store under it: what was delivered is recorded as shipped."""
    receiver.delay = 1.0
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "forward_webhook_url": receiver.url})))
    await client.post("/ingest", headers=AGENT, json=[make_signal(f"s-{i}") for i in range(3)])
    await asyncio.wait_for(receiver.started.wait(), 10)
    await client.close()  # while the receiver is still answering
    assert sorted(receiver.ids()) == ["s-0", "s-1", "s-2"]
    store = SQLiteStore(settings.db_path)
    await store.open()
    try:
        assert (await store.unshipped(10)).signals == []
    finally:
        await store.close()


async def test_file_sink_on_a_full_disk_loses_nothing(tmp_path):
    """A sink that cannot write leaves everything unshipped for the next run."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        await _ingest_resolved(store, "d", 5, ts="2026-01-01T00:00:00.0Z")
        target = tmp_path / "full.jsonl"
        target.mkdir()  # writing to a directory fails like a full disk does
        forwarder = Forwarder(store, [FileSink(target)], min_severity="info", base_delay=0.01)
        with pytest.raises(DeliveryError):
            await forwarder.run()
        assert await store.forward_backlog(["low"]) == 5
        target.rmdir()
        await asyncio.sleep(0.05)
        assert await forwarder.run() == "shipped 5 signal(s)"
        assert len(target.read_bytes().splitlines()) == 5
        assert await store.forward_backlog(["low"]) == 0
    finally:
        await store.close()


def test_slack_messages_escape_untrusted_text():
    message = slack_message(make_signal("s", title="<!channel> & <http://evil|click>",
                                        ts="2026-01-01T00:00:00.000000000Z"))
    assert "<!channel>" not in message["text"]
    assert "&lt;!channel&gt; &amp;" in message["text"]
    assert message["text"].startswith("*[CRITICAL]")


async def test_no_sink_means_no_forward_job(aiohttp_client, settings, caplog):
    caplog.set_level("INFO")
    client = await aiohttp_client(create_app(settings))
    forward = await job_state(client, "forward")
    assert forward["enabled"] is False and forward["next_run"] is None
    assert sum("forwarding is off" in r.message for r in caplog.records) == 1


async def test_jobs_say_which_instance_ran_them(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "instance_name": "backend-eu-1"})))
    await eventually(lambda: _finished(client, "stale-agents"))
    assert (await job_state(client, "stale-agents"))["instance"] == "backend-eu-1"
    assert (await job_state(client, "retention"))["instance"] is None  # not run yet


# -- forwarding under hostile or broken receivers (issue 9) ---------------------------------

SECRET_PATH = "/services/T000/B000/XXXXsecretpath"


class Hostile:
    """Local receivers that misbehave in one way each, at `<url>/<behaviour>` + SECRET_PATH."""

    def __init__(self) -> None:
        self.ids: list[str] = []  # signal ids accepted (from the header)
        self.stolen: list[bytes] = []  # bodies that reached the redirect target
        self.refuse: set[str] = set()  # signal ids answered 422
        self.delay = 0.0
        self.hanging = 0
        self.release = asyncio.Event()

    async def ok(self, request: web.Request) -> web.Response:
        await request.read()
        signal_id = request.headers["X-Santamon-Signal-Id"]
        if signal_id in self.refuse:
            return web.Response(status=422)
        await asyncio.sleep(self.delay)
        self.ids.append(signal_id)
        return web.Response(status=204)

    async def hang(self, request: web.Request) -> web.Response:
        self.hanging += 1
        await self.release.wait()
        return web.Response(status=204)

    async def steal(self, request: web.Request) -> web.Response:
        self.stolen.append(await request.read())
        return web.Response(status=200)


@pytest.fixture
async def hostile(aiohttp_server):
    hooks = Hostile()

    async def redirect(request: web.Request) -> web.Response:
        target = request.match_info["target"]
        location = (str(request.url.with_path(request.path)) if target == "self"
                    else f"{thief_url}/steal")
        return web.Response(status=int(request.match_info["status"]),
                            headers={"Location": location})

    thief = web.Application()
    thief.router.add_post("/steal", hooks.steal)
    thief_server = await aiohttp_server(thief)
    thief_url = str(thief_server.make_url("")).rstrip("/")
    app = web.Application()
    app.router.add_post("/ok" + SECRET_PATH, hooks.ok)
    app.router.add_post("/hang" + SECRET_PATH, hooks.hang)
    app.router.add_post("/redirect/{status}/{target}" + SECRET_PATH, redirect)
    server = await aiohttp_server(app)
    hooks.url = str(server.make_url("")).rstrip("/")
    yield hooks
    hooks.release.set()


async def _store_with(tmp_path, ids):
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    await store.insert_signals([
        NewSignal(sid, "2026-01-01T00:00:00.000000000Z", "h", "R", "high", "t", b"[]", b"{}",
                  None) for sid in ids])
    return store


async def _run_until(forwarder, done, runs=30):
    """Run the forwarder (waiting out its backoff) until `done()` or `runs` runs; the
    errors it raised."""
    errors = []
    for _ in range(runs):
        if await done():
            break
        await asyncio.sleep(forwarder.retry_in)
        try:
            await forwarder.run()
        except DeliveryError as exc:
            errors.append(str(exc))
    return errors


async def test_one_signal_a_receiver_refuses_never_holds_back_the_others(
        tmp_path, hostile, monkeypatch):
    monkeypatch.setattr(forwarding, "BATCH_SIZE", 3)
    monkeypatch.setattr(forwarding, "MAX_BATCHES_PER_RUN", 2)
    monkeypatch.setattr(forwarding, "MAX_BACKOFF_SECONDS", 0.05)
    ids = [f"sig-{n:02d}" for n in range(20)]
    hostile.refuse.add(ids[1])
    store = await _store_with(tmp_path, ids)
    try:
        async with aiohttp.ClientSession() as session:
            sink = forwarding.WebhookSink(session, hostile.url + "/ok" + SECRET_PATH, None, "json")
            file_sink = FileSink(tmp_path / "out.jsonl")
            forwarder = Forwarder(store, [sink, file_sink], min_severity="info",
                                  base_delay=0.01)

            async def all_but_one():
                return len(hostile.ids) == 19

            errors = await _run_until(forwarder, all_but_one)
            assert sorted(hostile.ids) == sorted(set(ids) - {ids[1]})
            assert errors and all("1 signal(s) not delivered" in e for e in errors), errors
            assert forwarder.consecutive_failures == len(errors)
            lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
            assert sorted(orjson.loads(line)["signal_id"] for line in lines) == sorted(hostile.ids)
            # It is still retried, and delivered once the receiver takes it.
            hostile.refuse.clear()
            await _run_until(forwarder, lambda: _count(hostile.ids, 20))
            assert sorted(hostile.ids) == sorted(ids)
            assert await store.forward_backlog(["high"]) == 0
    finally:
        await store.close()


async def _count(items, n):
    return len(items) >= n


async def test_a_stored_signal_id_with_control_characters_does_not_stop_forwarding(
        tmp_path, hostile):
    """Such ids are refused at ingest now, but a database may hold them from before."""
    bad = "bad\r\nX-Injected: 1\x00"
    store = await _store_with(tmp_path, ["first", bad, "last"])
    await store.close()
    server = ServerProcess(tmp_path / "s.db", env={
        "SANTAMON_FORWARD_WEBHOOK_URL": hostile.url + "/ok" + SECRET_PATH,
        "SANTAMON_FORWARD_FILE": str(tmp_path / "out.jsonl"), "SANTAMON_FORWARD_INTERVAL": "1s",
    }).start()
    try:
        async with aiohttp.ClientSession(server.url) as http:
            for n in range(3):
                async with http.post("/ingest", json=make_signal(f"new-{n}"),
                                     headers=AGENT) as response:
                    assert response.status == 200

        out = tmp_path / "out.jsonl"

        async def everything_forwarded():  # to the webhook, then to the file
            return (len(hostile.ids) == 6 and out.exists()
                    and len(out.read_bytes().splitlines()) == 6)

        await eventually(everything_forwarded, within=20)
        # The id rides percent-encoded in the header, as is in the body.
        assert quote(bad, safe="") in hostile.ids
        lines = out.read_bytes().splitlines()
        assert {orjson.loads(line)["signal_id"] for line in lines} == {
            "first", bad, "last", "new-0", "new-1", "new-2"}
    finally:
        server.kill()


@pytest.mark.parametrize("status", [302, 307, 308])
async def test_the_webhook_follows_no_redirect(tmp_path, hostile, status, caplog):
    store = await _store_with(tmp_path, ["r-1", "r-2"])
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{hostile.url}/redirect/{status}/thief{SECRET_PATH}"
            forwarder = Forwarder(store, [forwarding.WebhookSink(session, url, "k" * 16, "json")],
                                  min_severity="info", base_delay=0.01)
            with pytest.raises(DeliveryError, match=f"HTTP {status}"):
                await forwarder.run()
            assert hostile.stolen == []
            assert await store.forward_backlog(["high"]) == 2
    finally:
        await store.close()


async def _bad_status_line_server():
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 abc\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def _oversized_header_server():
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


@pytest.mark.parametrize("trouble", ["bad-status-line", "oversized-header", "redirect-loop",
                                     "refused"])
async def test_webhook_failures_never_show_the_urls_path_or_query(
        aiohttp_client, settings, hostile, trouble, caplog):
    servers = []
    query = "?token=QUERYSECRET"
    if trouble == "redirect-loop":
        url = f"{hostile.url}/redirect/307/self{SECRET_PATH}{query}"
    else:
        if trouble == "refused":
            port = free_port()
        else:
            raw = await (_bad_status_line_server() if trouble == "bad-status-line"
                         else _oversized_header_server())
            servers.append(raw)
            port = raw.sockets[0].getsockname()[1]
        url = f"http://hookuser:hookpass@127.0.0.1:{port}{SECRET_PATH}{query}"
    try:
        client = await aiohttp_client(create_app(settings.model_copy(update={
            **FAST, "forward_webhook_url": url})))
        await client.post("/ingest", headers=AGENT, json=make_signal("leak-1"))
        await eventually(lambda: _failures(client, 1))
        jobs = await get(client, "/jobs")
        shown = orjson.dumps(jobs).decode() + caplog.text
        assert "not delivered" in shown
        for secret in ("XXXXsecretpath", "T000", "QUERYSECRET", "hookpass", "hookuser"):
            assert secret not in shown, shown
    finally:
        for raw in servers:
            raw.close()


async def test_a_hanging_receiver_fails_the_run_after_one_timeout(tmp_path, hostile,
                                                                  monkeypatch):
    monkeypatch.setattr(forwarding, "WEBHOOK_TIMEOUT_SECONDS", 0.3)
    store = await _store_with(tmp_path, [f"h-{n}" for n in range(60)])
    try:
        async with aiohttp.ClientSession() as session:
            sink = forwarding.WebhookSink(session, hostile.url + "/hang" + SECRET_PATH, None,
                                          "json")
            forwarder = Forwarder(store, [sink], min_severity="info", base_delay=0.01)
            with pytest.raises(DeliveryError, match=r"no answer within 0\.3s"):
                await forwarder.run()
            # The receiver is down: the rest of the batch waits for the next run.
            assert hostile.hanging <= forwarding.WEBHOOK_CONCURRENCY
            assert forwarder.consecutive_failures == 1
    finally:
        await store.close()


async def test_a_forwarding_run_is_bounded_in_time_and_shown_failing(aiohttp_client, settings,
                                                                     hostile, monkeypatch):
    monkeypatch.setattr(forwarding, "MAX_RUN_SECONDS", 0.5)
    hostile.delay = 0.1  # answers, slowly: 60 signals take ~1.5 s at 4 at a time
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "forward_webhook_url": hostile.url + "/ok" + SECRET_PATH})))
    await client.post("/ingest", headers=AGENT, json=[make_signal(f"s-{n}") for n in range(60)])
    await eventually(lambda: _failures(client, 1))
    forward = await job_state(client, "forward")
    assert "longer than 0.5s" in forward["last_message"]
    # What was delivered before the cut is recorded; the rest follows in later runs.
    await eventually(lambda: _count(hostile.ids, 60), within=30)
    assert (await get(client, "/jobs"))["forwarding"]["backlog"] == 0
