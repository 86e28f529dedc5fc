"""GET /agents/{agent_id}: an agent's timeline from the history its heartbeats leave, with the
injected clock standing in for hours of a Mac's life."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from santamon import timeutil
from santamon.api.models import AgentTimeline
from santamon.api.state import LIVENESS
from santamon.app import create_app
from santamon.domain.heartbeats import KeptBeat, timeline

from .helpers import AGENT, ANALYST, FakeClock

NS = 1_000_000_000
DAY = datetime(2026, 11, 3, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 0) -> int:
    return int(DAY.timestamp() + day * 86400 + hour * 3600 + minute * 60 + second) * NS


def utc(ns: int) -> str:
    return timeutil.format_utc(ns)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at(22))


@pytest.fixture
async def client(aiohttp_client, settings, clock):
    return await aiohttp_client(create_app(settings, clock=clock))


async def beats_every_30s(client, clock, until_ns: int, **fields) -> None:
    """The agent beats every 30 s, each heartbeat written in its own flush, as in life."""
    while True:
        body = {"agent_id": "mbp-tl", "timestamp": utc(clock()), **fields}
        assert (await client.post("/agents/heartbeat", json=body, headers=AGENT)).status == 200
        await client.app[LIVENESS].flush()
        if clock() >= until_ns:
            return
        clock.advance(30)
        if "uptime_seconds" in fields:
            fields["uptime_seconds"] += 30


async def test_a_mac_that_rebooted_into_an_upgrade_after_a_gap(client, clock):
    await beats_every_30s(client, clock, at(22, 30), version="v0.3.0", os_version="15.4",
                          uptime_seconds=3600.0)
    clock.ns = at(23)  # silent for 30 min, back rebooted (up 2 min) with the new agent
    await beats_every_30s(client, clock, at(1, day=1), version="v0.3.1", os_version="15.4",
                          uptime_seconds=120.0)
    clock.advance(30)  # now: 30 s after its latest heartbeat, so still online

    response = await client.get("/agents/mbp-tl", params={"since": "2026-11-03T21:00:00Z"},
                                headers=ANALYST)
    assert response.status == 200
    body = await response.json()
    AgentTimeline.model_validate(body)  # what /openapi.json documents
    assert body["agent"]["agent_id"] == "mbp-tl" and body["agent"]["status"] == "active"
    assert (body["since"], body["until"]) == (utc(at(21)), utc(clock()))
    assert [(i["state"], i["start"], i["end"]) for i in body["intervals"]] == [
        ("online", utc(at(22)), utc(at(22, 30))),
        ("offline", utc(at(22, 30)), utc(at(23))),
        ("online", utc(at(23)), utc(clock()))]
    assert body["days"] == [
        {"date": "2026-11-03", "online_seconds": 5400.0, "known_seconds": 7200.0,
         "availability": 0.75},
        {"date": "2026-11-04", "online_seconds": 3630.0, "known_seconds": 3630.0,
         "availability": 1.0}]
    assert body["availability"] == pytest.approx(9030 / 10830)
    assert (body["online_seconds"], body["offline_seconds"]) == (9030.0, 1800.0)
    assert body["versions"] == [
        {"version": "v0.3.0", "os_version": "15.4", "since": utc(at(22)), "until": utc(at(23))},
        {"version": "v0.3.1", "os_version": "15.4", "since": utc(at(23)), "until": None}]
    assert body["reboots"] == [{"seen_at": utc(at(23)), "booted_at": utc(at(22, 58)),
                                "uptime_seconds": 120.0}]
    # first, samples at 22:10, 22:20, 22:30 (also the last before the gap), the return at
    # 23:00, then a sample every 10 min up to 01:00
    assert body["heartbeats_kept"] == 17


async def test_a_window_in_the_past_and_a_silent_agent(client, clock):
    await beats_every_30s(client, clock, at(22, 10), version="v0.3.1")
    clock.ns = at(23, 30)  # silent ever since its last heartbeat at 22:10
    body = await (await client.get("/agents/mbp-tl", headers=ANALYST)).json()
    assert [(i["state"], i["start"], i["end"]) for i in body["intervals"]] == [
        ("online", utc(at(22)), utc(at(22, 10))),
        ("offline", utc(at(22, 10)), utc(at(23, 30)))]
    assert body["since"] == utc(at(23, 30) - 7 * 86400 * NS)  # the retention, by default
    earlier = await (await client.get("/agents/mbp-tl", headers=ANALYST, params={
        "since": "2026-11-03T22:05:00Z", "until": "2026-11-03T22:06:00Z"})).json()
    assert [i["state"] for i in earlier["intervals"]] == ["online"]
    assert earlier["days"][0]["availability"] == 1.0


async def test_unknown_agents_and_bad_windows(client):
    response = await client.get("/agents/nobody", headers=ANALYST)
    assert response.status == 404
    assert (await response.json())["agent_id"] == "nobody"
    await client.post("/agents/heartbeat", headers=AGENT, json={
        "agent_id": "mbp-tl", "timestamp": "2026-11-03T22:00:00Z"})
    for params in ({"since": "2026-11-03T22:00:00Z", "until": "2026-11-03T21:00:00Z"},
                   {"since": "yesterday"}):
        response = await client.get("/agents/mbp-tl", params=params, headers=ANALYST)
        assert response.status == 422
    # an agent heard from a moment ago is there at once: the read flushes first
    assert (await client.get("/agents/mbp-tl", headers=ANALYST)).status == 200
    assert (await client.get("/agents/mbp-tl", headers=AGENT)).status == 403


async def test_any_agent_id_is_reached_through_the_query(client):
    """Ids a path segment cannot carry: a `/`, `..`, and `problems` (another route)."""
    for agent_id in ("office/mbp-7", "..", "problems"):
        await client.post("/agents/heartbeat", headers=AGENT, json={
            "agent_id": agent_id, "timestamp": "2026-11-03T22:00:00Z", "version": "v1"})
        response = await client.get("/agent", params={"agent_id": agent_id}, headers=ANALYST)
        assert response.status == 200, agent_id
        body = await response.json()
        AgentTimeline.model_validate(body)
        assert (body["agent"]["agent_id"], body["agent"]["version"]) == (agent_id, "v1")
    response = await client.get("/agent", params={"agent_id": "nobody"}, headers=ANALYST)
    assert (response.status, (await response.json())["agent_id"]) == (404, "nobody")
    assert (await client.get("/agent", headers=ANALYST)).status == 422
    assert (await client.get("/agent", params={"agent_id": ".."}, headers=AGENT)).status == 403


# -- the timeline itself, on histories a store could hold ------------------------------------

def kept(ns: int, reasons=("sample",), uptime=None, version="v1") -> KeptBeat:
    return KeptBeat(utc(ns), utc(ns), version, "15.4", uptime, reasons)


def test_heartbeats_of_a_server_that_kept_them_all_tell_gaps_and_reboots_apart():
    beats = [kept(at(10, m), reasons=None, uptime=600.0 + 60 * m) for m in range(5)]
    beats += [kept(at(11, m), reasons=None, uptime=30.0 + 60 * m) for m in range(3)]
    result = timeline(beats, beats[-1], stale=False, since_ns=at(9), until_ns=at(12),
                      now_ns=at(12))
    assert [(i["state"], i["start"], i["end"]) for i in result["intervals"]] == [
        ("online", utc(at(10)), utc(at(10, 4))), ("offline", utc(at(10, 4)), utc(at(11))),
        ("online", utc(at(11)), utc(at(11, 2))), ("offline", utc(at(11, 2)), utc(at(12)))]
    assert [r["seen_at"] for r in result["reboots"]] == [utc(at(11))]


def test_a_stale_agent_is_offline_since_its_last_heartbeat_however_recent():
    beats = [kept(at(10), reasons=("first",))]
    latest = kept(at(10, 1), reasons=())
    result = timeline(beats, latest, stale=True, since_ns=at(9), until_ns=at(10, 2),
                      now_ns=at(10, 2), gap_seconds=120)
    assert [i["state"] for i in result["intervals"]] == ["online", "offline"]
    assert result["intervals"][1]["start"] == utc(at(10, 1))


def test_a_window_starting_inside_a_gap_and_the_heartbeat_before_it():
    beats = [kept(at(8), reasons=("first",)), kept(at(8, 5), reasons=("last",)),
             kept(at(10), reasons=("return",), version="v2")]
    result = timeline(beats, beats[-1], stale=False, since_ns=at(9), until_ns=at(10, 1),
                      now_ns=at(10, 1))
    assert [(i["state"], i["start"]) for i in result["intervals"]] == [
        ("offline", utc(at(9))), ("online", utc(at(10)))]
    assert [v["version"] for v in result["versions"]] == ["v1", "v2"]
    assert result["versions"][0]["since"] == utc(at(8))  # the history knows it from there
    assert result["heartbeats_kept"] == 1
