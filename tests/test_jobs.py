"""The maintenance jobs on the real APScheduler with sub-second intervals; thresholds are
crossed by moving an injected clock, not by waiting for the wall clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import web

from santamon.api.state import LIVENESS
from santamon.app import create_app
from santamon.config import Settings
from santamon.jobs.forwarding import DeliveryError, FileSink, Forwarder, slack_message
from santamon.jobs.retention import prune
from santamon.store import NewSignal
from santamon.store.sqlite import SQLiteStore

from .helpers import AGENT, ANALYST, FakeClock, make_signal, sample

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
    settings = Settings(api_key=["k" * 16], signal_retention=0.001)
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


class Receiver:
    """A real local webhook receiver that can be told to fail."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.bodies: list[bytes] = []
        self.fail_with: int | None = None
        self.attempts = 0
        self.delay = 0.0
        self.started = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.fail_with:
            return web.Response(status=self.fail_with)
        body = await request.read()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        self.received.append(orjson.loads(body))
        return web.json_response({"ok": True})

    def ids(self) -> list[str]:
        return [h["X-Santamon-Signal-Id"] for h in self.headers]


@pytest.fixture
async def receiver(aiohttp_server):
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    hook.url = str(server.make_url("/hook"))
    return hook


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
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
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
