"""Bounded load and faults against real servers: ingest never stops while the forwarding sink
fails and recovers, retention runs, and the server is restarted with SIGTERM. Nothing
acknowledged may be lost, nothing stored twice, every signal forwarded, and memory stays flat.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from .helpers import AGENT, ANALYST, ServerProcess, make_signal, sample

pytestmark = pytest.mark.e2e

WORKERS = 8
PHASE_SECONDS = 3.0
SINK_DOWN_SECONDS = 1.5


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Sink:
    """The forwarding receiver: answers 503 until told to recover."""

    def __init__(self) -> None:
        self.up = False
        self.refused = 0
        self.received: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not self.up:
            self.refused += 1
            return web.Response(status=503)
        self.received.append(body["signal_id"])
        return web.Response(status=204)


async def ingest_for(proc: ServerProcess, seconds: float, prefix: str,
                     acknowledged: list[str]) -> None:
    deadline = time.monotonic() + seconds

    async def worker(w: int) -> None:
        async with aiohttp.ClientSession(proc.url) as http:
            n = 0
            while time.monotonic() < deadline:
                signal_id = f"{prefix}-{w}-{n}"
                n += 1
                try:
                    async with http.post("/ingest", json=make_signal(signal_id),
                                         headers=AGENT) as response:
                        if response.status == 200:
                            acknowledged.append(signal_id)
                    if n % 20 == 0:
                        beat = {**sample("heartbeat"), "agent_id": f"{prefix}-agent-{w}"}
                        async with http.post("/agents/heartbeat", json=beat,
                                             headers=AGENT) as response:
                            assert response.status == 200
                except aiohttp.ClientConnectionError:
                    return  # the server is going away: an agent would retry later

    await asyncio.gather(*(worker(w) for w in range(WORKERS)))


async def test_ingest_through_sink_failure_retention_and_a_sigterm_restart(
        aiohttp_server, tmp_path):
    sink = Sink()
    receiver = web.Application()
    receiver.router.add_post("/hook", sink.handle)
    hook = await aiohttp_server(receiver)
    # The shortest intervals and retention the configuration allows.
    env = {
        "SANTAMON_FORWARD_WEBHOOK_URL": str(hook.make_url("/hook")),
        "SANTAMON_FORWARD_INTERVAL": "1s",
        "SANTAMON_RETENTION_INTERVAL": "1s",
        "SANTAMON_HEARTBEAT_RETENTION": "1h",
        "SANTAMON_SIGNAL_RETENTION": "1h",
        "SANTAMON_STALE_CHECK_INTERVAL": "1s",
    }
    db = tmp_path / "fault.db"
    acknowledged: list[str] = []

    async def recover_sink_later() -> None:
        await asyncio.sleep(SINK_DOWN_SECONDS)
        sink.up = True

    # Phase 1: the sink is down, then recovers; SIGTERM at the end of the phase.
    first = ServerProcess(db, env=env).start()
    try:
        assert first.proc is not None
        await ingest_for(first, 0.5, "warm", acknowledged)
        rss_warm = rss_bytes(first.proc.pid)
        await asyncio.gather(recover_sink_later(),
                             ingest_for(first, PHASE_SECONDS, "one", acknowledged))
        rss_end = rss_bytes(first.proc.pid)
        sigterm = asyncio.create_task(asyncio.to_thread(first.stop))
        await ingest_for(first, 1.0, "during-stop", acknowledged)
        assert await sigterm == 0, first.log()
    finally:
        first.kill()
    assert sink.refused > 0
    # Memory: a guard against gross leaks only (about 2,000 signals here; SQLite's page caches
    # may legitimately grow by tens of MiB). Flatness over minutes belongs to `make bench`.
    assert rss_end - rss_warm < 40 * 1024 * 1024, (rss_warm, rss_end)

    # Phase 2: the same database after the restart; ingest goes on and forwarding catches up.
    second = ServerProcess(db, env=env).start()
    try:
        await ingest_for(second, 1.0, "two", acknowledged)
        async with aiohttp.ClientSession(second.url) as http:
            for _ in range(200):
                async with http.get("/jobs", headers=ANALYST) as response:
                    backlog = (await response.json())["forwarding"]["backlog"]
                if backlog == 0:
                    break
                await asyncio.sleep(0.1)
            assert backlog == 0, "forwarding did not catch up"
            async with http.get("/jobs", headers=ANALYST) as response:
                jobs = {job["id"]: job for job in (await response.json())["jobs"]}
        assert jobs["retention"]["runs"] >= 1 and jobs["retention"]["failures"] == 0
    finally:
        assert second.stop() == 0, second.log()

    with sqlite3.connect(db) as conn:
        rows = [row[0] for row in conn.execute("SELECT signal_id FROM signals")]
        shipped = {row[0] for row in conn.execute("SELECT signal_id FROM shipped")}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(rows) == len(set(rows)), "a signal is stored twice"
    missing = set(acknowledged) - set(rows)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged signals lost"
    assert len(acknowledged) > 500
    # Forwarding is at least once: every stored signal reached the sink and is marked shipped.
    assert set(rows) <= set(sink.received)
    assert set(rows) <= shipped
