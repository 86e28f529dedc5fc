"""Coalesced liveness (santamon/store/liveness.py) over every engine: heartbeats wait in memory
and go to the store together; what must see them flushes first."""

from __future__ import annotations

import asyncio

import pytest

from santamon import timeutil
from santamon.jobs.stale import check_stale_agents
from santamon.store import (
    AgentFilter,
    HistoryRule,
    Liveness,
    SignalFilter,
    StoreUnavailable,
    create_store,
)

from .test_contract import EVER, NS, ts

NEVER = 3600.0  # a flush interval no test waits for: they flush when they mean to


@pytest.fixture
async def counted(engine_settings, clock):
    """A store that records the size of every commit, and the list it records into."""
    commits: list[int] = []
    store = create_store(engine_settings, clock=clock,
                         on_commit=lambda writes, _seconds: commits.append(writes))
    await store.open()
    yield store, commits
    await store.close()


def beat(liveness: Liveness, agent_id: str, at: float, **fields) -> None:
    liveness.beat(agent_id, ts(at), version=fields.get("version", "v0.3.1"),
                  os_version=fields.get("os_version", "15.4.1"),
                  uptime_seconds=fields.get("uptime_seconds", 100.0 + at))


async def test_a_burst_of_heartbeats_for_one_agent_becomes_one_write(counted, clock):
    store, commits = counted
    liveness = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    for n in range(100):
        beat(liveness, "mac-1", n / 100)
        clock.advance(0.001)
    assert liveness.pending == 1
    assert await store.list_agents(AgentFilter()) == []  # acknowledged, not yet written
    before = list(commits)
    await liveness.flush()
    assert commits == [*before, 1]  # one transaction holding one write
    (agent,) = await store.list_agents(AgentFilter())
    assert (agent["timestamp"], agent["uptime_seconds"]) == (ts(0.99), 100.99)
    assert agent["last_seen"] == timeutil.format_utc(clock() - 1_000_000)
    history = await store.agent_history("mac-1", *EVER)
    assert [(b.timestamp, b.reasons) for b in history.beats] == [(ts(0.99), ("first",))]
    await liveness.flush()  # nothing pending: nothing written
    assert commits == [*before, 1]


async def test_many_agents_share_one_write_and_the_latest_of_each_wins(counted, clock):
    store, commits = counted
    liveness = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    for round_ in range(3):
        for n in range(50):
            beat(liveness, f"mac-{n}", round_, version=f"v{round_}")
    before = list(commits)
    await liveness.flush()
    assert commits == [*before, 1]
    agents = await store.list_agents(AgentFilter())
    assert len(agents) == 50 and {a["version"] for a in agents} == {"v2"}


async def test_the_timer_flushes_and_stop_writes_what_is_left(store, clock):
    liveness = Liveness(store, interval=0.05, history=HistoryRule(), clock=clock)
    liveness.start()
    try:
        beat(liveness, "mac-1", 0)
        for _ in range(200):
            if await store.list_agents(AgentFilter()):
                break
            await asyncio.sleep(0.01)
        assert [a["agent_id"] for a in await store.list_agents(AgentFilter())] == ["mac-1"]
    finally:
        beat(liveness, "mac-2", 1)
        await liveness.stop()
    assert liveness.pending == 0
    assert len(await store.list_agents(AgentFilter())) == 2


async def test_heartbeats_are_kept_and_refused_while_the_store_fails(open_store, clock):
    store = await open_store()
    liveness = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    beat(liveness, "mac-1", 0)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await liveness.flush()
    assert liveness.pending == 1  # kept for the next try
    with pytest.raises(StoreUnavailable):  # not acknowledged into nothing
        beat(liveness, "mac-2", 1)
    assert liveness.pending == 1


async def test_the_stale_check_counts_heartbeats_not_yet_written(store, clock):
    """An agent whose last written heartbeat is past the threshold but which beat since is
    not stale: the check flushes first."""
    liveness = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    started = clock()
    beat(liveness, "mac-1", 0)
    beat(liveness, "mac-2", 0)
    await liveness.flush()
    clock.advance(170)
    beat(liveness, "mac-1", 170)  # acknowledged, still in memory
    clock.advance(20)
    outcome = await check_stale_agents(store, liveness, 180, started - 10 * NS, clock)
    assert outcome == "1 agent(s) newly stale"
    agents = {a["agent_id"]: a["status"] for a in await store.list_agents(AgentFilter())}
    assert agents == {"mac-1": "active", "mac-2": "stale"}


async def test_a_heartbeat_another_process_holds_does_not_make_its_agent_stale(store, clock):
    """Two processes on one database, each coalescing its own heartbeats: the one that runs
    the check cannot flush the other's, so agents get the other's flush interval too."""
    here = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    elsewhere = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    started = clock()
    beat(here, "mac-1", 0)
    beat(here, "mac-2", 0)
    await here.flush()
    clock.advance(180.3)
    beat(elsewhere, "mac-1", 180.3)  # answered by the other process, not yet written
    clock.advance(0.3)
    outcome = await check_stale_agents(store, here, 180, started - 10 * NS, clock,
                                       held_elsewhere=1.0)
    assert outcome == "0 agent(s) newly stale"
    await elsewhere.flush()  # within its interval, as it would
    clock.advance(0.5)  # mac-2 is now silent for over 181 s
    await check_stale_agents(store, here, 180, started - 10 * NS, clock, held_elsewhere=1.0)
    agents = {a["agent_id"]: a["status"] for a in await store.list_agents(AgentFilter())}
    assert agents == {"mac-1": "active", "mac-2": "stale"}
    assert (await store.list_signals(SignalFilter(host_id="mac-1"))).signals == []


async def test_how_the_agent_authenticated_travels_with_its_latest_heartbeat(store, clock):
    liveness = Liveness(store, interval=NEVER, history=HistoryRule(), clock=clock)
    liveness.beat("mac-1", ts(0), version="v1", os_version="15", uptime_seconds=1.0,
                  auth="shared")
    liveness.beat("mac-2", ts(0), version="v1", os_version="15", uptime_seconds=1.0,
                  auth="shared")
    clock.advance(1)
    liveness.beat("mac-1", ts(1), version="v1", os_version="15", uptime_seconds=2.0,
                  auth="bound")  # replaces the pending one, and how it came with it
    await liveness.flush()
    agents = {a["agent_id"]: a["auth"] for a in await store.list_agents(AgentFilter())}
    assert agents == {"mac-1": "bound", "mac-2": "shared"}
