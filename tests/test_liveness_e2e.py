"""Coalesced heartbeats in a real `santamon serve`: kill -9 loses at most the last flush
interval of liveness and never a signal; SIGTERM writes every heartbeat acknowledged."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiohttp
import pytest

from .helpers import AGENT, ANALYST, ServerProcess, make_signal

pytestmark = pytest.mark.e2e

FLUSH_SECONDS = 1.0  # the shortest the settings allow
# What a loaded 2-core machine may add before the flush timer fires and its commit lands.
SCHEDULING_SLACK_SECONDS = 1.5
AGENTS = 20
RUN_SECONDS = 4.0


def beat_body(agent: int, n: int) -> dict:
    return {"agent_id": f"mac-{agent:02d}", "timestamp": f"2026-11-03T14:{n // 60:02d}:"
            f"{n % 60:02d}.000000000Z", "version": "v0.3.1", "os_version": "15.4.1",
            "uptime_seconds": 1000.0 + n}


def stored_agents(db) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT agent_id, last_timestamp FROM agents"))


async def test_kill_9_right_after_heartbeats_loses_at_most_the_last_interval(tmp_path):
    db = tmp_path / "crash.db"
    proc = ServerProcess(db, env={"SANTAMON_HEARTBEAT_FLUSH_INTERVAL": f"{FLUSH_SECONDS}s"})
    proc.start()
    acknowledged: dict[str, list[tuple[str, float]]] = {}  # agent -> (timestamp, acked at)
    signals: list[str] = []
    try:
        async with aiohttp.ClientSession(proc.url) as http:
            deadline = time.monotonic() + RUN_SECONDS
            n = 0
            while time.monotonic() < deadline:
                for agent in range(AGENTS):
                    body = beat_body(agent, n)
                    async with http.post("/agents/heartbeat", json=body,
                                         headers=AGENT) as response:
                        assert response.status == 200
                    acknowledged.setdefault(body["agent_id"], []).append(
                        (body["timestamp"], time.monotonic()))
                async with http.post("/ingest", json=make_signal(f"crash-{n}"),
                                     headers=AGENT) as response:
                    assert response.status == 200
                    signals.append(f"crash-{n}")
                n += 1
        killed_at = time.monotonic()
    finally:
        proc.kill()

    stored = stored_agents(db)
    written_by = killed_at - FLUSH_SECONDS - SCHEDULING_SLACK_SECONDS
    for agent_id, beats in acknowledged.items():
        due = [stamp for stamp, acked_at in beats if acked_at < written_by]
        assert due, "the run was too short to tell"
        assert stored.get(agent_id, "") >= max(due), agent_id
    with sqlite3.connect(db) as conn:
        kept = {row[0] for row in conn.execute("SELECT signal_id FROM signals")}
    assert not set(signals) - kept, "an acknowledged signal was lost"

    restarted = ServerProcess(db).start()
    try:
        async with aiohttp.ClientSession(restarted.url) as http, \
                http.get("/agents", headers=ANALYST) as response:
            assert (await response.json())["count"] == AGENTS
    finally:
        restarted.kill()


async def test_sigterm_writes_every_heartbeat_acknowledged(tmp_path):
    db = tmp_path / "stop.db"
    proc = ServerProcess(db, env={"SANTAMON_HEARTBEAT_FLUSH_INTERVAL": "60s"}).start()
    try:
        async with aiohttp.ClientSession(proc.url) as http:
            async def send(body: dict) -> int:
                async with http.post("/agents/heartbeat", json=body, headers=AGENT) as response:
                    return response.status

            bodies = [beat_body(agent, 7) for agent in range(AGENTS)]
            assert await asyncio.gather(*map(send, bodies)) == [200] * AGENTS
        assert stored_agents(db) == {}  # acknowledged, waiting for the flush
        assert proc.stop() == 0
    finally:
        proc.kill()
    assert stored_agents(db) == {body["agent_id"]: body["timestamp"] for body in bodies}
