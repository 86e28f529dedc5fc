"""Databases written by earlier versions of this server upgrade in place to the current schema:
row ids become sequence numbers, so the forwarder's position and the order stay as they were.
(Seed-schema files: tests/test_migration.py.)"""

from __future__ import annotations

import sqlite3

import aiosqlite
import pytest

from santamon.store import NewSignal, SignalFilter
from santamon.store.sqlite import SQLiteStore
from santamon.store.sqlite.schema import SCHEMA_VERSION, migrate

ROWS = [  # as an older version stored them: same time for two, so order falls to the row id
    ("a", "2026-11-03T22:22:07.000000000Z", "mac-1", "SM-1", "high", "Alpha"),
    ("b", "2026-11-03T22:22:08.000000000Z", "mac-2", "SM-2", "low", "Beta"),
    ("c", "2026-11-03T22:22:08.000000000Z", "mac-1", "SM-1", "critical", "Gamma"),
    ("d", "2026-11-03T22:22:09.000000000Z", "mac-3", "SM-3", "medium", "Delta"),
]

# As every version before the history kept reasons stored each heartbeat.
OLD_HEARTBEAT = ("mac-1", "2026-11-03T22:22:00.000000000Z", "v0.3.0", "15.4", 60.0,
                 "2026-11-03T22:22:01.000000000Z")
EVER = ("0001-01-01T00:00:00.000000000Z", "9999-01-01T00:00:00.000000000Z")


async def write_old_database(path, version: int) -> None:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, target=version)
    with sqlite3.connect(path) as conn:
        for n, (sid, ts, host, rule, severity, title) in enumerate(ROWS):
            conn.execute(
                "INSERT INTO signals (rowid, signal_id, ts, host_id, rule_id, severity, title, "
                "tags, context, received_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', '{}', "
                "?, 'open')", (10 * (n + 1), sid, ts, host, rule, severity, title, ts))
        conn.execute("UPDATE signals SET status = 'acknowledged' WHERE signal_id = 'b'")
        conn.execute("INSERT INTO shipped VALUES ('a', '2026-11-03T22:23:00.000000000Z')")
        conn.execute("INSERT INTO meta VALUES ('forward_position', '10')")  # after "a"
        conn.execute(f"INSERT INTO heartbeats VALUES {OLD_HEARTBEAT}")
        conn.execute("INSERT INTO agents (agent_id, first_seen, last_seen) VALUES (?, ?, ?)",
                     (OLD_HEARTBEAT[0], OLD_HEARTBEAT[-1], OLD_HEARTBEAT[-1]))


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
async def test_an_older_database_upgrades_in_place(tmp_path, version):
    path = tmp_path / "s.db"
    await write_old_database(path, version)
    store = SQLiteStore(path)
    await store.open()
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert conn.execute("SELECT signal_id, seq FROM signals ORDER BY seq").fetchall() \
                == [("a", 10), ("b", 20), ("c", 30), ("d", 40)]
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        page = await store.list_signals(SignalFilter(status=None, limit=2))
        rest = await store.list_signals(SignalFilter(status=None, cursor=page.next_cursor))
        assert [s["signal_id"] for s in page.signals + rest.signals] == ["d", "c", "b", "a"]
        stats = await store.stats()
        assert stats["by_status"] == {"open": 3, "acknowledged": 1}
        assert stats["by_host"] == {"mac-1": 2, "mac-2": 1, "mac-3": 1}
        assert [s["signal_id"] for s in (await store.unshipped(10)).signals] == ["b", "c", "d"]
        assert [s["signal_id"] for s in (await store.list_signals(
            SignalFilter(search="gam"))).signals] == ["c"]
        # the groups of repeats are counted from the rows the upgrade found
        groups = (await store.signal_groups(SignalFilter(status=None, silenced=None))).groups
        assert sorted((g["rule_id"], g["host_id"], g["count"], g["by_status"]) for g in groups
                      ) == [("SM-1", "mac-1", 2, {"open": 2}),
                            ("SM-2", "mac-2", 1, {"acknowledged": 1}),
                            ("SM-3", "mac-3", 1, {"open": 1})]
        # new signals continue after the old ones
        await store.insert_signals([_new("e")])
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT seq FROM signals WHERE signal_id = 'e'"
                                ).fetchone()[0] > 40
        old = await store.get_signal("a")
        assert old["shipped_at"] == "2026-11-03T22:23:00.000000000Z"
        assert (old["shortened"], old["original_context_bytes"]) == ([], None)
        (kept,) = (await store.agent_history("mac-1", *EVER)).beats
        assert (kept.timestamp, kept.received_at, kept.reasons) == (
            OLD_HEARTBEAT[1], OLD_HEARTBEAT[-1], None)  # kept when every heartbeat was
    finally:
        await store.close()


def _new(signal_id: str) -> NewSignal:
    return NewSignal(signal_id, "2026-11-03T22:22:10.000000000Z", "mac-9", "SM-9", "low",
                     "Epsilon", b"[]", b"{}", None)


async def test_sessions_of_a_version_3_database_become_the_admins(tmp_path):
    """Sessions so far were the admin key's, recorded as "analyst"."""
    path = tmp_path / "s.db"
    await write_old_database(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO sessions VALUES (?, 'analyst', ?, ?)", (
            b"t" * 32, "2026-11-03T00:00:00.000000000Z", "2099-01-01T00:00:00.000000000Z"))
    store = SQLiteStore(path)
    await store.open()
    try:
        session = await store.get_session(b"t" * 32, "2026-11-04T00:00:00.000000000Z")
        assert (session.actor, session.role, session.key_id) == ("admin", "admin", None)
        assert await store.keys_version() == 0
    finally:
        await store.close()
