"""`santamon migrate-db`: a SQLite database (the seed's, or one of ours) copied into PostgreSQL
shows the same signals, history, agents, sessions, counts and forwarding position through the
store; a copy killed halfway goes on where it stopped; a target holding other data is refused.
"""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from dataclasses import asdict
from pathlib import Path

import asyncpg
import orjson
import pytest

from santamon import timeutil
from santamon.domain.agents import stale_alert
from santamon.progress import Progress
from santamon.store import (
    AgentFilter,
    ConnectionProblem,
    ConsoleSession,
    Heartbeat,
    HistoryRule,
    KeyUse,
    Matchers,
    NewAgentKey,
    NewAnalystKey,
    NewSignal,
    NewSilence,
    SignalFilter,
    Store,
)
from santamon.store.postgres import PostgresStore
from santamon.store.sqlite import SQLiteStore

from .helpers import FakeClock
from .test_migration import write_seed_db

pytestmark = pytest.mark.e2e

HISTORY = HistoryRule()
EVER = ("0001-01-01T00:00:00.000000000Z", "9999-01-01T00:00:00.000000000Z")

NS = 1_000_000_000
SEVERITIES = ("info", "low", "medium", "high", "critical")


async def migrate_db(source: Path, url: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "santamon", "migrate-db", "--from", str(source), "--to", url,
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def run_migrate_db(source: Path, url: str, *args: str) -> tuple[int, str, str]:
    proc = await migrate_db(source, url, *args)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def write_ours(path: Path, signals: int) -> None:
    """A database of ours with every kind of row: triaged signals (some shortened), agents
    (stale, with their alert or held by a maintenance window), heartbeats, sessions, keys,
    silences (one expired) and the signals they silenced, and a forwarding position."""
    clock = FakeClock(1_790_000_000 * NS)
    store = SQLiteStore(path, clock=clock)
    await store.open()
    try:
        for start in range(0, signals, 500):
            await store.insert_signals([NewSignal(
                f"sig-{n}", f"2026-09-21T{n % 24:02d}:00:{n % 60:02d}.{n:09d}Z", f"mac-{n % 17}",
                f"SM-{n % 5}", SEVERITIES[n % 5], f"Title {n % 11}", b'["t"]',
                orjson.dumps({"n": n}), None, ("context",) if n % 7 == 0 else (),
                n * 1000 if n % 7 == 0 else None)
                for n in range(start, min(signals, start + 500))])
        quiet, _ = await store.create_silence(NewSilence(
            Matchers(rule_id="SM-1", title="Title *"), "build noise", "alice",
            clock_ts(clock, 86400)), resolve_matching=True)
        ended, _ = await store.create_silence(NewSilence(
            Matchers(host_id="mac-3"), "in repair", "bob", clock_ts(clock, 3600)), False)
        await store.expire_silence(ended.id, "carol")
        await store.insert_signals([NewSignal(
            f"quiet-{n}", f"2026-09-22T00:00:{n:02d}.000000000Z", f"mac-{n % 3}", "SM-1",
            SEVERITIES[n % 5], "Title 1", b"[]", b"{}", None, silence_id=quiet.id)
            for n in range(12)])
        await store.set_status([f"sig-{n}" for n in range(0, signals, 3)], "acknowledged",
                               "looking", "alice")
        await store.set_status([f"sig-{n}" for n in range(0, signals, 9)], "resolved", None,
                               "bob")
        for n in range(6):
            await store.record_heartbeats([Heartbeat(f"mac-{n}", clock_ts(clock), clock_ts(clock),
                                                     version="v1", os_version="15")], HISTORY)
            clock.advance(10)
        clock.advance(600)
        await store.record_heartbeats([Heartbeat("mac-0", clock_ts(clock), clock_ts(clock),
                                                 version="v2", os_version="15")], HISTORY)
        await store.mark_stale_agents(
            clock_ts(clock, -300),
            lambda agent, now: None if agent.agent_id == "mac-5" else stale_alert(
                agent, now, threshold_seconds=300))
        for n in range(3):
            await store.create_session(ConsoleSession(bytes([n]) * 32, f"person-{n}",
                                                      clock_ts(clock), clock_ts(clock, 3600),
                                                      "viewer" if n else "admin",
                                                      f"p-{n}" if n else None),
                                       keep=10)
        await store.add_connection_problems([ConnectionProblem(
            clock_ts(clock), f"10.0.0.{n}", "tls_failure", n + 1, clock_ts(clock), "untrusted")
            for n in range(4)])
        await store.record_heartbeats([Heartbeat("mac-bound", clock_ts(clock), clock_ts(clock),
                                                 version="v2", os_version="15", auth="bound")],
                                      HISTORY)
        await store.create_agent_keys([NewAgentKey(f"ak-{n}", bytes([n]) * 32, f"mac-{n}",
                                                   "alice") for n in range(3)])
        await store.record_key_use([KeyUse("ak-0", clock_ts(clock), "10.0.0.7")])
        await store.rotate_agent_key("ak-1", NewAgentKey("ak-9", bytes([9]) * 32, "", "bob"),
                                     clock_ts(clock, 3600))
        await store.revoke_agent_key("ak-2", "carol")
        await store.create_analyst_key(NewAnalystKey("p-1", b"p" * 32, "vera", "viewer",
                                                     "admin"))
        batch = await store.unshipped(40)
        shipped = [s["signal_id"] for s in batch.signals[:25]]
        await store.mark_shipped(shipped, batch.positions[len(shipped) - 1])
    finally:
        await store.close()


def clock_ts(clock: FakeClock, seconds: float = 0) -> str:
    return timeutil.format_utc(clock() + int(seconds * NS))


async def everything(store: Store) -> dict:
    """What the store shows, as JSON: every signal with its history, agents with theirs,
    stats, sessions, and what the forwarder would be offered."""
    signals, cursor = [], None
    while True:
        page = await store.list_signals(SignalFilter(status=None, limit=1000, cursor=cursor))
        signals += page.signals
        if (cursor := page.next_cursor) is None:
            break
    details = [await store.get_signal(s["signal_id"]) for s in signals]
    unshipped = await store.unshipped(100_000)
    sessions = [await store.get_session(bytes([n]) * 32, "2000-01-01T00:00:00.000000000Z")
                for n in range(3)]
    agents = await store.list_agents(AgentFilter(limit=2000))
    histories = [await store.agent_history(a["agent_id"], *EVER) for a in agents]
    groups = await store.signal_groups(SignalFilter(status=None, silenced=None, limit=500))
    now = "2026-10-01T00:00:00.000000000Z"
    for detail in details:
        detail["silence"] = detail["silence"] and detail["silence"].as_dict(now)
    return orjson.loads(orjson.dumps({
        "signals": details,
        "silences": [s.as_dict(now) for s in await store.list_silences()],
        "silences_version": await store.silences_version(),
        "groups": groups.groups,
        "quiet_backlog": await store.forward_backlog(SEVERITIES, include_silenced=False),
        "agents": agents,
        "agent_histories": [[asdict(beat) for beat in h.beats] for h in histories if h],
        "stats": await store.stats(),
        "unshipped": [s["signal_id"] for s in unshipped.signals],
        "backlog": await store.forward_backlog(SEVERITIES),
        "sessions": [s and (s.actor, s.expires_at, s.role, s.key_id) for s in sessions],
        "problems": await store.connection_problems("", 100),
        "agent_keys": [{**asdict(k), "key_hash": k.key_hash.hex()}
                       for k in await store.list_agent_keys()],
        "analyst_keys": [{**asdict(k), "key_hash": k.key_hash.hex()}
                         for k in await store.list_analyst_keys()],
        "keys_version": await store.keys_version(),
        "search": [s["signal_id"] for s in (await store.list_signals(
            SignalFilter(search="title 1", status=None, limit=1000))).signals],
    }))


async def assert_same(source: Path, url: str) -> dict:
    sqlite, postgres = SQLiteStore(source), PostgresStore(url)
    await sqlite.open()
    await postgres.open()
    try:
        expected, found = await everything(sqlite), await everything(postgres)
    finally:
        await sqlite.close()
        await postgres.close()
    assert found == expected
    return found


async def test_a_seed_schema_database_is_copied_whole(tmp_path, postgres_url):
    source = tmp_path / "seed.db"
    write_seed_db(source)
    code, out, err = await run_migrate_db(source, postgres_url)
    assert code == 0, err
    assert "signals: 4/4 (100%)" in out  # plain lines, not a bar, when not on a terminal
    assert "counts verified: 4 signals" in out and "3 heartbeats" in out
    shown = await assert_same(source, postgres_url)
    assert {s["signal_id"] for s in shown["signals"]} == {"s1", "s2", "s3", "s4"}
    assert shown["unshipped"] == ["s2", "s3", "s4"]  # s1 was shipped by the seed

    # new signals continue after the copied ones, and are forwarded after them
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        assert await store.insert_signals([NewSignal(
            "new", "2026-11-05T00:00:00.000000000Z", "mac", "R", "low", "t", b"[]", b"{}",
            None)]) == [True]
        assert [s["signal_id"] for s in (await store.unshipped(10)).signals] == [
            "s2", "s3", "s4", "new"]
    finally:
        await store.close()


async def test_an_interrupted_copy_resumes_where_it_stopped(tmp_path, postgres_url):
    source = tmp_path / "ours.db"
    await write_ours(source, 3000)
    proc = await migrate_db(source, postgres_url, "--chunk-size", "20")
    conn = await asyncpg.connect(postgres_url)
    try:
        for _ in range(3000):  # until the copy is well under way
            copied = await _fetch_or_none(conn, "SELECT value FROM meta WHERE key = "
                                                "'migrate-db:copied:signals'")
            if copied is not None and int(copied) >= 1000:
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        halfway = await conn.fetchval("SELECT count(*) FROM signals")
        assert 1000 <= halfway < 3000
    finally:
        await conn.close()

    code, out, err = await run_migrate_db(source, postgres_url, "--chunk-size", "20")
    assert code == 0, err
    # and 12 silenced signals, and 4 stale alerts (a fifth is held)
    assert "done (resumed): counts verified: 3,016 signals" in out
    shown = await assert_same(source, postgres_url)
    assert shown["stats"]["total_signals"] == 3016
    assert sum(a["status"] == "stale" for a in shown["agents"]) == 5
    assert len(shown["unshipped"]) == 3016 - 25
    assert [s["signals"] for s in shown["silences"]] == [0, 12]
    assert shown["stats"]["silenced_open"] == 12

    # running it again changes nothing and checks again
    code, out, err = await run_migrate_db(source, postgres_url)
    assert code == 0 and "counts verified" in out, err


async def test_a_target_holding_other_data_is_refused(tmp_path, postgres_url):
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        await store.insert_signals([NewSignal("elsewhere", "2026-11-05T00:00:00.000000000Z",
                                              "mac", "R", "low", "t", b"[]", b"{}", None)])
    finally:
        await store.close()
    source = tmp_path / "ours.db"
    await write_ours(source, 10)
    code, _, err = await run_migrate_db(source, postgres_url)
    assert code == 1
    assert "refusing to migrate" in err and "1 signals" in err


async def test_a_copy_of_one_database_is_not_mixed_with_another(tmp_path, postgres_url):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    await write_ours(first, 10)
    await write_ours(second, 10)
    assert (await run_migrate_db(first, postgres_url))[0] == 0
    code, _, err = await run_migrate_db(second, postgres_url)
    assert code == 1 and "copy of another SQLite database" in err


def test_progress_is_a_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    progress = Progress(screen)
    progress.update("signals", 0, 200)
    progress.update("signals", 200, 200)
    assert screen.getvalue().startswith("\rsignals")
    assert screen.getvalue().endswith("[" + "#" * 30 + "] 100% 200/200\n")


async def _fetch_or_none(conn: asyncpg.Connection, sql: str) -> str | None:
    try:
        return await conn.fetchval(sql)
    except asyncpg.UndefinedTableError:  # the schema is not created yet
        return None


