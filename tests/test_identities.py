"""New identities are bounded, over a real `santamon serve`: a key bringing more new agent ids
in an hour than allowed is turned away for new ones only (503, which the agent retries) and
raises one alert, while every known agent keeps working; and many agents going silent in one
check raise one alert that names them, not one each."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest

from santamon import timeutil
from santamon.store import Heartbeat, HistoryRule
from santamon.store.sqlite import SQLiteStore

from .helpers import AGENT, AGENT_KEY_2, ANALYST, ServerProcess, make_signal
from .test_agent_keys import alerts, beat, call, eventually

pytestmark = pytest.mark.e2e


async def send_beat(server: ServerProcess, agent_id: str,
                    headers: dict[str, str] = AGENT) -> tuple[int, Any]:
    return await call(server, "POST", "/agents/heartbeat", headers=headers,
                      body=beat(agent_id))


async def test_a_key_bringing_too_many_new_agents_is_throttled_for_new_ones_only(tmp_path):
    server = ServerProcess(tmp_path / "s.db", env={"SANTAMON_NEW_AGENTS_PER_HOUR": "5"})
    server.start()
    try:
        for n in range(5):
            assert (await send_beat(server, f"new-{n}"))[0] == 200
        async with aiohttp.ClientSession() as http, http.post(
                server.url + "/agents/heartbeat", json=beat("new-5"), headers=AGENT) as refused:
            assert refused.status == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert "more than 5 new agent ids" in (await refused.json())["error"]
        status, _ = await call(server, "POST", "/ingest", headers=AGENT,
                               body=make_signal("from-new-6", host_id="new-6"))
        assert status == 503
        # Known agents keep working, with heartbeats and signals...
        assert (await send_beat(server, "new-0"))[0] == 200
        assert (await call(server, "POST", "/ingest", headers=AGENT,
                           body=make_signal("from-new-1", host_id="new-1")))[0] == 200
        # ...and another key has a budget of its own.
        assert (await send_beat(server, "other-0", {"X-API-Key": AGENT_KEY_2}))[0] == 200
        for n in range(7, 12):
            assert (await send_beat(server, f"new-{n}"))[0] == 503
        (alert,) = await alerts(server, "AGENT-NEW-IDS-THROTTLED")
        assert (alert["host_id"], alert["severity"]) == ("santamon-backend", "high")
        assert alert["context"]["first_refused_agent_id"] == "new-5"
        assert alert["context"]["key"].startswith("shared key ")
        _, metrics = await call(server, "GET", "/metrics", headers=ANALYST)
        assert "santamon_new_agents_throttled_total 7.0" in metrics
        _, agents = await call(server, "GET", "/agents", headers=ANALYST)
        assert {a["agent_id"] for a in agents["heartbeats"]} == {f"new-{n}" for n in range(5)} \
            | {"other-0"}
    finally:
        assert server.stop() == 0
    # After a restart the agents it knew are known from the database, not counted again.
    server.start()
    try:
        for n in range(5):
            assert (await send_beat(server, f"new-{n}"))[0] == 200
        for n in range(20, 25):
            assert (await send_beat(server, f"new-{n}"))[0] == 200
        assert (await send_beat(server, "new-25"))[0] == 503
    finally:
        server.kill()


async def write_silent_agents(db_path, agent_ids: list[str]) -> None:
    """Agents last heard from an hour ago, as the store records any heartbeat."""
    an_hour_ago = timeutil.format_utc(timeutil.now_ns() - 3600 * 10**9)
    store = SQLiteStore(db_path)
    await store.open()
    try:
        await store.record_heartbeats([Heartbeat(agent_id, "2026-11-03T14:22:30Z", an_hour_ago)
                                       for agent_id in agent_ids], HistoryRule())
    finally:
        await store.close()


async def test_many_agents_silent_at_once_raise_one_alert_naming_them(tmp_path):
    office = [f"office-{n}" for n in range(6)]
    await write_silent_agents(tmp_path / "s.db", office)
    server = ServerProcess(tmp_path / "s.db", env={
        "SANTAMON_STALE_AFTER": "2s", "SANTAMON_STALE_CHECK_INTERVAL": "1s",
        "SANTAMON_STALE_SUMMARY_THRESHOLD": "3"}).start()
    stop = asyncio.Event()

    async def keep_beating() -> None:  # an agent that stays, then falls silent on its own
        while not stop.is_set():
            await send_beat(server, "lone")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.4)

    beating = asyncio.create_task(keep_beating())
    try:
        async def summarised() -> bool:
            return bool(await alerts(server, "AGENT-STALE-MANY"))

        await eventually(summarised, within=30)
        stop.set()
        await beating
        (summary,) = await alerts(server, "AGENT-STALE-MANY")
        assert summary["context"]["count"] == 6
        assert summary["context"]["agent_ids"] == office
        assert summary["title"].startswith("6 agents stopped sending heartbeats at once")
        assert (summary["severity"], summary["host_id"]) == ("high", "santamon-backend")
        _, agents = await call(server, "GET", "/agents?status=stale", headers=ANALYST)
        assert sorted(a["agent_id"] for a in agents["heartbeats"]) == office

        # One agent silent on its own still gets its own alert.
        async def lone_alert() -> bool:
            return bool(await alerts(server, "AGENT-STALE"))

        await eventually(lone_alert, within=30)
        (alert,) = await alerts(server, "AGENT-STALE")
        assert alert["host_id"] == "lone"
        assert len(await alerts(server, "AGENT-STALE-MANY")) == 1
        assert "6 agents are stale at once" in server.log()
    finally:
        stop.set()
        await beating
        server.kill()
