"""The PostgreSQL engine's own behaviour, beyond the contract: instances migrating at once, a
database of an earlier version upgrading in place, concurrent stale checks (held alerts too),
instances triaging one group at once, bucket edges kept exact under concurrent triage, a
silence seen by another instance, a transaction that commits after a later one, grouped
ingests that fail alone, job locks shared by several processes, and the database going away
and coming back under an open store."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from signal import SIGCONT, SIGSTOP

import asyncpg
import orjson
import pytest

from santamon import timeutil
from santamon.domain.agents import STALE_RULE_ID, stale_alert
from santamon.store import (
    AgentFilter,
    Heartbeat,
    HistoryRule,
    Liveness,
    Matchers,
    NewSignal,
    NewSilence,
    SignalFilter,
    StoreUnavailable,
)
from santamon.store.postgres import PostgresStore
from santamon.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION

from ..helpers import FakeClock
from ..pg import PostgresServer

NS = 1_000_000_000
EVER = ("0001-01-01T00:00:00.000000000Z", "9999-01-01T00:00:00.000000000Z")
SILENCES_VERSION = 5  # the schema step that added silences and counted the groups already stored
OUTAGE_BOUND_SECONDS = 15  # every call answers within this while the server is down


def signal(signal_id: str, *, title: str = "Suspicious thing", host: str = "mac-1",
           rule: str = "SM-001", severity: str = "high",
           at: str = "2026-11-03T22:22:07.000000000Z") -> NewSignal:
    return NewSignal(signal_id=signal_id, ts=at, host_id=host, rule_id=rule, severity=severity,
                     title=title, tags_json=b"[]",
                     context_json=orjson.dumps({"kind": "execution"}), rule_description=None)


def second(n: int) -> str:
    return timeutil.format_utc(1_790_000_000 * NS + n * NS)


async def opened(url: str, **options) -> PostgresStore:
    store = PostgresStore(url, **options)
    await store.open()
    return store


# -- schema ------------------------------------------------------------------------------------

OPEN_AT = """
import asyncio, sys, time
from santamon.store.postgres import PostgresStore

async def main(url, at):
    time.sleep(max(0.0, at - time.time()))
    store = PostgresStore(url)
    await store.open()
    await store.close()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def test_a_version_1_database_upgrades_in_place_keeping_sessions(postgres_url):
    """Sessions so far were the admin key's, recorded as "analyst": after the upgrade they are
    the admin's, and agents are there with no authentication recorded yet."""
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        await MIGRATIONS[0](conn)
        await conn.execute("INSERT INTO schema_version VALUES (1)")
        await conn.execute("INSERT INTO sessions VALUES ($1, 'analyst', $2, $3)", b"t" * 32,
                           "2026-11-03T00:00:00.000000000Z", "2099-01-01T00:00:00.000000000Z")
        await conn.execute("INSERT INTO agents (agent_id, first_seen, last_seen) VALUES "
                           "('mac-1', 'a', 'b')")
    finally:
        await conn.close()
    store = await opened(postgres_url)
    try:
        session = await store.get_session(b"t" * 32, "2026-11-04T00:00:00.000000000Z")
        assert (session.actor, session.role, session.key_id) == ("admin", "admin", None)
        assert [a["auth"] for a in await store.list_agents(AgentFilter())] == [None]
        assert await store.keys_version() == 0
        assert await store.list_agent_keys() == []
    finally:
        await store.close()


async def test_instances_starting_at_once_migrate_the_schema_once(postgres_url):
    start_at = str(time.time() + 2)  # after every interpreter has started
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", OPEN_AT, postgres_url, start_at,
        stderr=asyncio.subprocess.PIPE) for _ in range(4)]
    for proc in procs:
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr.decode()
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetch("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    finally:
        await conn.close()
    store = await opened(postgres_url)
    try:
        assert await store.insert_signals([signal("after")]) == [True]
    finally:
        await store.close()


async def test_a_newer_schema_is_refused(postgres_url):
    store = await opened(postgres_url)
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    with pytest.raises(RuntimeError, match="newer than this server"):
        await PostgresStore(postgres_url).open()


async def migrated_to(conn: asyncpg.Connection, version: int) -> None:
    """The schema as a server of that version left it."""
    for step in MIGRATIONS[:version]:
        await step(conn)
    await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
    await conn.execute("INSERT INTO schema_version VALUES ($1)", version)


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
async def test_an_older_database_upgrades_in_place(postgres_url, version):
    conn = await asyncpg.connect(postgres_url)
    try:
        async with conn.transaction():
            await migrated_to(conn, version)
        await conn.execute(  # as versions before 3 stored a signal
            "INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, "
            "context, received_at) VALUES ('old', '2026-11-03T22:22:07.000000000Z', 'mac-1', "
            "'SM-001', 'high', 'Suspicious thing', '[]', '{}', "
            "'2026-11-03T22:23:00.000000000Z')")
        await conn.execute(  # as versions before 6 stored every heartbeat
            "INSERT INTO heartbeats VALUES ('mac-1', '2026-11-03T22:22:00.000000000Z', "
            "'v0.3.0', '15.4', 60.0, '2026-11-03T22:22:01.000000000Z')")
        await conn.execute("INSERT INTO agents (agent_id, first_seen, last_seen) VALUES "
                           "('mac-1', '2026-11-03T22:22:01.000000000Z', "
                           "'2026-11-03T22:22:01.000000000Z')")
    except BaseException:
        await conn.close()
        raise
    store = await opened(postgres_url)
    try:
        assert await conn.fetchval("SELECT version FROM schema_version") == SCHEMA_VERSION
        old = await store.get_signal("old")
        assert (old["title"], old["shortened"], old["original_context_bytes"]) == (
            "Suspicious thing", [], None)
        assert (await store.stats())["total_signals"] == 1
        assert await store.insert_signals([signal("new")]) == [True]
        (kept,) = (await store.agent_history("mac-1", *EVER)).beats
        assert (kept.timestamp, kept.reasons) == ("2026-11-03T22:22:00.000000000Z", None)
        # Version 4's indexes and statistics, whatever version the database came from.
        index = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_signals_status_ts'")
        assert index.endswith("(status, ts, seq, severity)")
        assert await conn.fetchval("SELECT count(*) FROM pg_statistic_ext "
                                   "WHERE stxname = 'signals_rule_title'") == 1
    finally:
        await store.close()
        await conn.close()


@pytest.mark.parametrize("version", range(1, SILENCES_VERSION))
async def test_a_database_from_before_silences_counts_its_groups(postgres_url, version):
    conn = await asyncpg.connect(postgres_url)
    try:
        async with conn.transaction():
            await migrated_to(conn, version)
            await conn.execute(
                "INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, "
                "context, received_at, status) SELECT 'v1-' || n, $1 || lpad(n::text, 2, '0') "
                "|| '.000000000Z', 'mac-' || (n % 2), 'SM-001', 'high', 't', '[]', '{}', $2, "
                "CASE WHEN n % 3 = 0 THEN 'resolved' ELSE 'open' END "
                "FROM generate_series(0, 11) AS n",
                "2026-09-21T00:00:", "2026-09-21T00:00:00.000000000Z")
    finally:
        await conn.close()
    store = await opened(postgres_url)
    try:
        groups = await store.signal_groups(SignalFilter(status=None, silenced=None))
        assert [(g["host_id"], g["count"], g["first_ts"][:19], g["last_ts"][:19], g["by_status"])
                for g in groups.groups] == [
            ("mac-1", 6, "2026-09-21T00:00:01", "2026-09-21T00:00:11",
             {"open": 4, "resolved": 2}),
            ("mac-0", 6, "2026-09-21T00:00:00", "2026-09-21T00:00:10",
             {"open": 4, "resolved": 2})]
        # the counters go on from what the upgrade found
        await store.set_status(["v1-11"], "resolved", None, "alice")
        groups = await store.signal_groups(SignalFilter())
        assert [(g["host_id"], g["count"], g["last_ts"][:19]) for g in groups.groups] == [
            ("mac-0", 4, "2026-09-21T00:00:10"), ("mac-1", 3, "2026-09-21T00:00:07")]
        assert (await store.stats())["open_by_severity"] == {"high": 7}
    finally:
        await store.close()


# -- concurrency -------------------------------------------------------------------------------

async def test_concurrent_stale_checks_raise_one_alert_per_silence(postgres_url):
    clock = FakeClock()
    stores = [await opened(postgres_url, clock=clock) for _ in range(3)]
    try:
        agents = [f"mac-{n:02d}" for n in range(30)]
        now = timeutil.format_utc(clock())
        await stores[0].record_heartbeats([Heartbeat(agent, now, now) for agent in agents],
                                          HistoryRule())
        clock.advance(600)
        cutoff = timeutil.format_utc(clock() - 180 * NS)
        alert = functools.partial(stale_alert, threshold_seconds=180.0)
        marked = await asyncio.gather(*(store.mark_stale_agents(cutoff, alert)
                                        for store in stores for _ in range(3)))
        everyone = [agent for batch in marked for agent in batch]
        assert sorted(everyone) == agents  # each agent marked by exactly one check
        alerts = (await stores[1].list_signals(
            SignalFilter(rule_id=STALE_RULE_ID, limit=1000))).signals
        assert sorted(a["host_id"] for a in alerts) == agents
    finally:
        for store in stores:
            await store.close()


def received(clock: FakeClock, seconds: float) -> str:
    return timeutil.format_utc(clock() + int(seconds * NS))


async def test_two_instances_each_coalescing_never_move_an_agent_back(postgres_url):
    """Each instance holds its own agents' heartbeats and flushes on its own: a flush holding
    an older heartbeat than the one another instance stored changes nothing."""
    clocks = [FakeClock(), FakeClock()]
    stores = [await opened(postgres_url, clock=clock) for clock in clocks]
    lives = [Liveness(store, interval=3600, history=HistoryRule(), clock=clock)
             for store, clock in zip(stores, clocks, strict=True)]
    try:
        lives[1].beat("mac", "2026-11-03T14:00:05Z", version="v1", os_version="15",
                      uptime_seconds=5.0)  # received first, flushed last
        clocks[0].advance(10)
        lives[0].beat("mac", "2026-11-03T14:00:10Z", version="v2", os_version="15",
                      uptime_seconds=10.0)
        await lives[0].flush()
        await lives[1].flush()
        (agent,) = await stores[1].list_agents(AgentFilter())
        assert (agent["last_seen"], agent["version"]) == (received(clocks[0], 0), "v2")
        history = await stores[0].agent_history("mac", *EVER)
        assert [(b.version, b.reasons) for b in history.beats] == [("v2", ("first",))]
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_flushes_and_stale_checks_of_two_pools_apply_each_beat_once(
        postgres_url, caplog):
    """Two stores (two pools) flush interleaved heartbeats of the same agents while stale
    checks run: last_seen ends at the latest heartbeat, every agent has one first, every stale
    period one reconnection note, and no transaction had to be retried (rows are locked in
    one order)."""
    clock = FakeClock()
    stores = [await opened(postgres_url, clock=clock) for _ in range(2)]
    agents = [f"mac-{n:02d}" for n in range(40)]
    history = HistoryRule(sample_seconds=0)
    alert = functools.partial(stale_alert, threshold_seconds=180.0)

    def heard(n: int, offset: int) -> bool:  # each agent misses some beats, not the same
        return (n + offset) % 3 != 0

    async def flushes(store: PostgresStore, offsets: range) -> None:
        for offset in offsets:
            await store.record_heartbeats(
                [Heartbeat(agent, received(clock, offset), received(clock, offset))
                 for n, agent in reversed(list(enumerate(agents))) if heard(n, offset)],
                history)

    try:
        # New agents heard by both at once, each flush holding a later or an earlier beat.
        await asyncio.gather(flushes(stores[0], range(0, 40, 2)),
                             flushes(stores[1], range(1, 40, 2)))
        latest = {agent: max(offset for offset in range(40) if heard(n, offset))
                  for n, agent in enumerate(agents)}
        shown = {a["agent_id"]: a["last_seen"]
                 for a in await stores[0].list_agents(AgentFilter(limit=100))}
        assert shown == {agent: received(clock, offset) for agent, offset in latest.items()}
        for agent in agents:
            beats = (await stores[1].agent_history(agent, *EVER)).beats
            assert sum("first" in b.reasons for b in beats) == 1
            assert beats[-1].received_at == received(clock, latest[agent])

        clock.advance(600)
        cutoff = timeutil.format_utc(clock() - 180 * NS)
        marked = await asyncio.gather(*(store.mark_stale_agents(cutoff, alert)
                                        for store in stores))
        assert sorted(marked[0] + marked[1]) == agents
        # Back: both instances flush while stale checks run on both.
        clock.advance(1)
        await asyncio.gather(flushes(stores[0], range(0, 6, 2)),
                             flushes(stores[1], range(1, 6, 2)),
                             *(store.mark_stale_agents(cutoff, alert) for store in stores))
        for agent in agents:
            (stale,) = (await stores[0].list_signals(SignalFilter(
                host_id=agent, rule_id=STALE_RULE_ID))).signals
            notes = [entry["note"] for entry in
                     (await stores[1].get_signal(stale["signal_id"]))["history"]]
            assert len(notes) == 1 and notes[0].startswith("reconnected"), (agent, notes)
        assert {a["status"] for a in await stores[0].list_agents(AgentFilter(limit=100))} \
            == {"active"}
    finally:
        for store in stores:
            await store.close()
    assert not [r for r in caplog.records if "retried" in r.getMessage()]


async def test_a_held_alert_is_raised_once_by_concurrent_stale_checks(postgres_url):
    clock = FakeClock()
    stores = [await opened(postgres_url, clock=clock) for _ in range(3)]
    held = {f"mac-{n:02d}" for n in range(10)}

    def builder(agent, now):
        if agent.agent_id in held:
            return None
        return stale_alert(agent, now, threshold_seconds=180.0)

    try:
        now = timeutil.format_utc(clock())
        await stores[0].record_heartbeats([Heartbeat(agent, now, now) for agent in sorted(held)],
                                          HistoryRule())
        clock.advance(600)
        cutoff = timeutil.format_utc(clock() - 180 * NS)
        assert sorted(await stores[0].mark_stale_agents(cutoff, builder)) == sorted(held)
        held.clear()  # every maintenance window is over
        raised = await asyncio.gather(*(store.mark_stale_agents(cutoff, builder)
                                        for store in stores for _ in range(3)))
        assert sorted(agent for batch in raised for agent in batch) == [
            f"mac-{n:02d}" for n in range(10)]
        alerts = (await stores[1].list_signals(
            SignalFilter(rule_id=STALE_RULE_ID, limit=1000))).signals
        assert len(alerts) == 10
    finally:
        for store in stores:
            await store.close()


async def test_instances_triaging_one_group_at_once_change_each_signal_once(postgres_url):
    stores = [await opened(postgres_url) for _ in range(2)]
    try:
        await stores[0].insert_signals([signal(f"g{n:04d}", rule="R-big", host="h-big",
                                               at=second(n)) for n in range(3000)])
        group = SignalFilter(status=None, rule_id="R-big", host_id="h-big", silenced=None)
        outcomes = await asyncio.gather(*(
            store.set_status_matching(group, "resolved", "noise", actor, 100_000)
            for store, actor in zip(stores, ("alice", "bob"), strict=True)))
        assert sum(changed for changed, _ in outcomes) == 3000
        assert not any(more for _, more in outcomes)
        conn = await asyncpg.connect(postgres_url)
        try:
            assert await conn.fetchrow("SELECT count(*), count(DISTINCT signal_id) "
                                       "FROM signal_history") == (3000, 3000)
        finally:
            await conn.close()
        (entry,) = (await stores[1].signal_groups(SignalFilter(status=None))).groups
        assert (entry["count"], entry["by_status"]) == (3000, {"resolved": 3000})
        assert (entry["first_ts"], entry["last_ts"]) == (second(0), second(2999))
    finally:
        for store in stores:
            await store.close()


BUCKETS_FROM_SIGNALS = """
SELECT rule_id, host_id, status, severity, coalesce(silence_id, 0), count(*), min(ts), max(ts)
FROM signals GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"""
BUCKETS_COUNTED = """
SELECT rule_id, host_id, status, severity, silence_id, n, first_ts, last_ts
FROM group_counts WHERE n > 0 ORDER BY 1, 2, 3, 4, 5"""


async def test_bucket_edges_stay_exact_while_instances_triage_them_at_once(postgres_url):
    """Every call takes the newest or oldest signal out of a bucket while other instances do
    the same: each has to measure the bucket again, seeing the others' commits."""
    stores = [await opened(postgres_url) for _ in range(4)]
    try:
        await stores[0].insert_signals([signal(f"e{n:03d}", at=second(n), host=f"h-{n % 2}")
                                        for n in range(200)])
        newest_first = [f"e{n:03d}" for n in reversed(range(200))]
        oldest_first = newest_first[::-1]
        calls = [stores[n % 4].set_status([sid], status, None, "alice")
                 for n, (sid, status) in enumerate(
                     [(sid, "resolved") for sid in newest_first[:60]]
                     + [(sid, "acknowledged") for sid in oldest_first[:60]])]
        await asyncio.gather(*calls)
        await stores[1].prune_resolved_signals(second(190), 10)  # the oldest resolved go
        conn = await asyncpg.connect(postgres_url)
        try:
            assert await conn.fetch(BUCKETS_COUNTED) == await conn.fetch(BUCKETS_FROM_SIGNALS)
        finally:
            await conn.close()
    finally:
        for store in stores:
            await store.close()


async def test_a_silence_made_through_one_instance_is_seen_by_another(postgres_url):
    clock = FakeClock()
    first, other = [await opened(postgres_url, clock=clock) for _ in range(2)]
    try:
        now = timeutil.format_utc(clock())
        ends = timeutil.format_utc(clock() + 3600 * NS)
        version = await other.silences_version()
        made = await asyncio.gather(*(
            store.create_silence(NewSilence(Matchers(rule_id=f"R-{n}"), "noise", "alice", ends),
                                 resolve_matching=False)
            for n, store in enumerate([first, other] * 5)))
        versions = {await other.silences_version(), await first.silences_version()}
        assert versions == {version + 10}  # each change counted once, whoever made it
        assert sorted(s.id for s in await other.list_silences(active_at=now)) == sorted(
            silence.id for silence, _ in made)
        await first.expire_silence(made[0][0].id, "bob")
        assert await other.silences_version() == version + 11
        assert len(await other.list_silences(active_at=now)) == 9
    finally:
        await first.close()
        await other.close()


async def test_a_signal_committed_after_a_later_one_is_still_forwarded(postgres_url):
    store = await opened(postgres_url)
    conn = await asyncpg.connect(postgres_url)
    try:
        # "early" takes its sequence number first, but its transaction commits last (with
        # other counters than "late": the same ones would make "late" wait for its commit).
        early = conn.transaction()
        await early.start()
        await conn.execute(
            "INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, "
            "context, received_at) VALUES ('early', $1, 'mac-1', 'SM-001', 'high', 't', '[]', "
            "'{}', $1)", timeutil.utc_now())
        late = signal("late", host="mac-2", rule="SM-002", severity="low", title="other")
        assert await store.insert_signals([late]) == [True]

        batch = await store.unshipped(10)
        # Nothing after a transaction still running is offered: it could yet commit before.
        assert batch.signals == []
        await store.mark_shipped([], batch.end)

        await early.commit()
        forwarded = []
        for _ in range(3):
            batch = await store.unshipped(10)
            forwarded += [s["signal_id"] for s in batch.signals]
            await store.mark_shipped([s["signal_id"] for s in batch.signals], batch.end)
        assert forwarded == ["late", "early"] or forwarded == ["early", "late"]
    finally:
        await conn.close()
        await store.close()


async def test_one_refused_call_does_not_fail_the_calls_grouped_with_it(postgres_url):
    store = await opened(postgres_url)
    try:
        outcomes = await asyncio.gather(
            store.insert_signals([signal("a1"), signal("a2")]),
            store.insert_signals([signal("bad"), signal("bad-2", title="nul \x00 inside")]),
            store.insert_signals([signal("b1")]),
            return_exceptions=True)
        assert outcomes[0] == [True, True] and outcomes[2] == [True]
        assert isinstance(outcomes[1], StoreUnavailable)
        assert await store.get_signal("bad") is None
        assert (await store.stats())["total_signals"] == 3
        await store.check_writable()  # the database is fine
    finally:
        await store.close()


# -- outages -----------------------------------------------------------------------------------

async def within_bound(call):
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(call, OUTAGE_BOUND_SECONDS)
    return time.monotonic() - started


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_an_outage_answers_store_unavailable_and_the_store_recovers(
        private_postgres: PostgresServer, mode):
    url = private_postgres.new_database()
    store = await opened(url)
    try:
        assert await store.insert_signals([signal("before")]) == [True]
        await asyncio.to_thread(private_postgres.stop, mode)
        await within_bound(store.insert_signals([signal("during")]))
        await within_bound(store.list_signals(SignalFilter()))
        now = timeutil.utc_now()
        await within_bound(store.record_heartbeats([Heartbeat("mac-1", now, now)],
                                                   HistoryRule()))
        await within_bound(store.agent_history("mac-1", now, now))
        await within_bound(store.check_writable())
        await asyncio.to_thread(private_postgres.start)

        # the same store, not reopened
        assert await store.insert_signals([signal("after")]) == [True]
        await store.check_writable()
        page = await store.list_signals(SignalFilter())
        assert {s["signal_id"] for s in page.signals} == {"before", "after"}
    finally:
        await store.close()


async def test_a_connection_that_stops_answering_is_not_used_again(private_postgres):
    url = private_postgres.new_database()
    store = await opened(url, pool_size=1, command_timeout=1.0)
    admin = await asyncpg.connect(url)
    try:
        assert await store.insert_signals([signal("s1")]) == [True]
        backends = [row[0] for row in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'santamon' "
            "AND datname = current_database()")]
        assert len(backends) == 1
        # The backend freezes, as a server behind a dead network path looks to its client.
        os.kill(backends[0], SIGSTOP)
        try:
            assert await within_bound(store.list_signals(SignalFilter())) < 5
        finally:
            os.kill(backends[0], SIGCONT)
        assert len((await store.list_signals(SignalFilter())).signals) == 1
        now = [row[0] for row in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'santamon' "
            "AND datname = current_database()")]
        assert backends[0] not in now
    finally:
        await admin.close()
        await store.close()


# -- job locks: one process runs each job --------------------------------------------------------

async def holds(store: PostgresStore, job: str) -> bool:
    async with store.job_lock(job) as held:
        return held


async def lock_backends(admin: asyncpg.Connection) -> list[int]:
    return [row[0] for row in await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'santamon job locks' "
        "AND datname = current_database()")]


async def test_a_job_lock_stays_with_its_process_until_it_closes(postgres_url):
    first, second = await opened(postgres_url), await opened(postgres_url)
    try:
        assert await holds(first, "forward")
        assert not await holds(second, "forward")
        assert await holds(second, "stale-agents")  # each job has a lock of its own
        for _ in range(3):  # the holder keeps it from one run to the next
            assert await holds(first, "forward")
            assert not await holds(second, "forward")
        await first.close()
        assert await holds(second, "forward")
    finally:
        await first.close()
        await second.close()


async def test_a_holder_whose_session_ends_gives_its_jobs_to_another(postgres_url):
    """What happens when the holder's process dies: the server ends its session, which frees
    the locks (a real kill -9 of a server is in tests/test_cluster.py)."""
    first, second = await opened(postgres_url), await opened(postgres_url)
    admin = await asyncpg.connect(postgres_url)
    try:
        assert await holds(first, "forward")
        assert not await holds(second, "forward")
        (holder,) = [pid for pid in await lock_backends(admin)
                     if await admin.fetchval("SELECT count(*) FROM pg_locks WHERE pid = $1 "
                                             "AND locktype = 'advisory'", pid)]
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", holder)
        await asyncio.sleep(0.2)
        assert await holds(second, "forward")
        # The old holder's connection broke: it takes a new one, and finds the job taken.
        assert not await holds(first, "forward")
    finally:
        await admin.close()
        await first.close()
        await second.close()


async def test_job_locks_answer_store_unavailable_while_the_database_is_down(private_postgres):
    url = private_postgres.new_database()
    store = await opened(url)
    try:
        assert await holds(store, "retention")
        await asyncio.to_thread(private_postgres.stop, "fast")
        await within_bound(holds(store, "retention"))
        await asyncio.to_thread(private_postgres.start)
        assert await holds(store, "retention")
    finally:
        await store.close()
