"""The SQLite engine's own behaviour, beyond the contract: the write-ahead log stays bounded,
the writer survives bad operations, VACUUM is safe, a failed open leaves nothing running, and a
deleted file stops acknowledgements."""

import asyncio
import itertools
import sqlite3
import threading
from dataclasses import dataclass
from typing import ClassVar

import pytest

from santamon.store import NewSignal, SignalFilter, StoreUnavailable
from santamon.store.sqlite import SQLiteStore, maintenance, writer
from santamon.store.sqlite.schema import SCHEMA_VERSION


def signals(prefix: str, count: int) -> list[NewSignal]:
    return [NewSignal(f"{prefix}-{i}", "2026-11-03T22:22:07.000000000Z", "h", "R", "low", "t",
                      b"[]", b'{"blob": "' + b"x" * 4000 + b'"}', None)
            for i in range(count)]


async def test_wal_is_emptied_once_past_its_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(maintenance, "WAL_RESTART_BYTES", 256 * 1024)
    monkeypatch.setattr(maintenance, "CHECKPOINT_INTERVAL_SECONDS", 0.05)
    path = tmp_path / "s.db"
    wal = tmp_path / "s.db-wal"
    store = SQLiteStore(path)
    await store.open()
    try:
        # A long read pins the log, as a steady stream of queries does: nothing can be
        # checkpointed past it, so the log grows while it lasts.
        reader = sqlite3.connect(path)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM signals").fetchone()
        for batch in range(20):
            await store.insert_signals(signals(f"b{batch}", 50))
        grown = wal.stat().st_size
        assert grown > 2 * 1024 * 1024
        reader.rollback()
        reader.close()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if wal.stat().st_size < 256 * 1024:
                break
        assert wal.stat().st_size < 256 * 1024, (grown, wal.stat().st_size)
        assert await store.forward_backlog(["low"]) == 1000
    finally:
        await store.close()


async def test_the_wal_stays_bounded_while_writes_never_stop(tmp_path, monkeypatch):
    """SQLite starts the log over only when a commit begins with all of it copied, which under
    steady writes never happens; the writer does it between two commits instead."""
    cap = 256 * 1024
    monkeypatch.setattr(maintenance, "WAL_RESTART_BYTES", cap)
    monkeypatch.setattr(maintenance, "CHECKPOINT_BYTES", 64 * 1024)
    monkeypatch.setattr(maintenance, "CHECKPOINT_POLL_SECONDS", 0.01)
    wal = tmp_path / "s.db-wal"
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    sizes: list[int] = []
    writing = True

    async def sample() -> None:
        while writing:
            sizes.append(wal.stat().st_size if wal.exists() else 0)
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    try:
        for batch in range(200):  # ~16 MB of signals, one commit after another
            await asyncio.gather(*(store.insert_signals(signals(f"w{batch}-{n}", 5))
                                   for n in range(4)))
    finally:
        writing = False
        await sampler
        await store.close()
    restarts = sum(later < earlier for earlier, later in itertools.pairwise(sizes))
    assert restarts >= 3, sizes  # the log was started over, again and again...
    # ...so it stayed a fraction of the ~16 MB written (how small a multiple of the cap
    # depends on when the checkpoint thread gets a core: `make bench` measures that).
    assert max(sizes) < 32 * cap, max(sizes)


async def test_checkpoints_on_a_fresh_database_do_not_fail(tmp_path, monkeypatch, caplog):
    """The upgrade of a fresh file uses the temp database on the maintenance connection; a
    checkpoint of every database then failed with "database table is locked" (issue 13)."""
    monkeypatch.setattr(maintenance, "CHECKPOINT_INTERVAL_SECONDS", 0.02)
    monkeypatch.setattr(maintenance, "CHECKPOINT_POLL_SECONDS", 0.02)
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.insert_signals(signals("c", 5))
        await asyncio.sleep(0.3)  # about 15 checkpoints
    finally:
        await store.close()
    failures = [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]
    assert failures == []


async def test_a_writer_bug_fails_the_callers_instead_of_hanging_them(tmp_path, monkeypatch):
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        def broken(self, conn, batch):
            raise RuntimeError("bug")

        monkeypatch.setattr(writer.Writer, "_commit", broken)
        try:
            await asyncio.wait_for(store.insert_signals(signals("x", 1)), 5)
        except StoreUnavailable as exc:
            assert "bug" in str(exc)
        else:
            raise AssertionError("the write should have failed")
        monkeypatch.undo()
        # the thread survived and keeps committing
        assert await asyncio.wait_for(store.insert_signals(signals("y", 2)), 5) == [True, True]
    finally:
        await store.close()


@dataclass
class Broken:
    """An operation that writes half its work, then fails."""

    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn, ops, now):
        conn.execute("INSERT INTO meta (key, value) VALUES ('half-written', 'x')")
        raise ValueError("bad operation")


async def test_one_failing_write_does_not_fail_the_writes_committed_with_it(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        outcomes = await asyncio.gather(
            store.insert_signals(signals("a", 3)),
            store._write(Broken()),
            store.insert_signals(signals("b", 2)),
            return_exceptions=True)
        assert outcomes[0] == [True] * 3 and outcomes[2] == [True] * 2
        assert isinstance(outcomes[1], ValueError)
        assert await store.forward_backlog(("low",)) == 5
        with sqlite3.connect(tmp_path / "s.db") as conn:  # the failed one left nothing
            assert conn.execute("SELECT count(*) FROM meta WHERE key = 'half-written'"
                                ).fetchone() == (0,)
    finally:
        await store.close()


async def test_vacuum_while_open_keeps_cursors_and_the_forwarding_position(tmp_path):
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.insert_signals(signals("v", 60))
        # free pages in the middle of the file, as retention leaves them
        await store.set_status([f"v-{i}" for i in range(10, 40)], "resolved", None, "t")
        assert await store.prune_resolved_signals("9999-01-01T00:00:00.000000000Z", 100) == 30
        first = await store.list_signals(SignalFilter(limit=10))
        batch = await store.unshipped(15)
        await store.mark_shipped([s["signal_id"] for s in batch.signals], batch.end)
        with sqlite3.connect(path) as conn:
            seqs = conn.execute("SELECT signal_id, seq FROM signals").fetchall()

        before, after = await asyncio.to_thread(maintenance.vacuum, path)
        assert after < before

        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT signal_id, seq FROM signals").fetchall() == seqs
        rest = await store.list_signals(SignalFilter(limit=100, cursor=first.next_cursor))
        assert ([s["signal_id"] for s in first.signals + rest.signals]
                == [s["signal_id"] for s in (await store.list_signals(
                    SignalFilter(limit=100))).signals])
        left = (await store.unshipped(100)).signals
        assert [s["signal_id"] for s in left] == [f"v-{i}" for i in range(45, 60)]
        assert await store.insert_signals(signals("w", 1)) == [True]  # still writable
    finally:
        await store.close()


def _santamon_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread()}


@pytest.mark.parametrize("content", [b"not a database at all, just text" * 100,
                                     b"SQLite format 3\x00" + b"\xff" * 100])
async def test_a_failed_open_leaves_no_thread_running(tmp_path, content):
    path = tmp_path / "s.db"
    path.write_bytes(content)
    before = _santamon_threads()
    store = SQLiteStore(path)
    with pytest.raises(sqlite3.DatabaseError):
        await store.open()
    await asyncio.sleep(0.1)
    assert _santamon_threads() <= before


async def test_a_newer_schema_is_refused_and_leaves_no_thread_running(tmp_path):
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = _santamon_threads()
    with pytest.raises(RuntimeError, match="newer than this server"):
        await SQLiteStore(path).open()
    await asyncio.sleep(0.1)
    assert _santamon_threads() <= before


@pytest.mark.parametrize("victim", ["s.db", "s.db-wal"])
async def test_a_deleted_file_stops_acknowledgements(tmp_path, victim, caplog):
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        assert await store.insert_signals(signals("before", 1)) == [True]
        (tmp_path / victim).unlink()
        with pytest.raises(StoreUnavailable, match="deleted or replaced"):
            await store.insert_signals(signals("after", 1))
        with pytest.raises(StoreUnavailable, match="deleted or replaced"):
            await store.check_writable()
        assert sum("deleted or replaced" in r.message for r in caplog.records) == 1
    finally:
        await store.close()


async def test_santamon_vacuum_compacts_a_live_database(tmp_path, monkeypatch, capsys):
    from santamon.cli import main

    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.insert_signals(signals("c", 200))
        await store.set_status([f"c-{i}" for i in range(150)], "resolved", None, "t")
        await store.prune_resolved_signals("9999-01-01T00:00:00.000000000Z", 1000)
        monkeypatch.setenv("SANTAMON_API_KEY", "agent-key-0123456789abcdef")
        monkeypatch.setenv("SANTAMON_DB_PATH", str(path))
        assert await asyncio.to_thread(main, ["vacuum"]) == 0
        assert "done:" in capsys.readouterr().out
        assert len((await store.list_signals(SignalFilter(limit=1000))).signals) == 50
    finally:
        await store.close()


# Every counter table against a count of the signals themselves.
RECOUNTS = {
    "signal_counts": ("SELECT severity, status, n FROM signal_counts WHERE n > 0",
                      "SELECT severity, status, count(*) FROM signals GROUP BY 1, 2"),
    "host_counts": ("SELECT host_id, n FROM host_counts WHERE n > 0",
                    "SELECT host_id, count(*) FROM signals GROUP BY 1"),
    "rule_counts": ("SELECT rule_id, n FROM rule_counts WHERE n > 0",
                    "SELECT rule_id, count(*) FROM signals GROUP BY 1"),
    "signal_titles": ("SELECT rule_id, title, n FROM signal_titles WHERE n > 0",
                      "SELECT rule_id, title, count(*) FROM signals GROUP BY 1, 2"),
    "group_counts": ("SELECT rule_id, host_id, status, severity, silence_id, n, first_ts, "
                     "last_ts FROM group_counts WHERE n > 0",
                     "SELECT rule_id, host_id, status, severity, coalesce(silence_id, 0), "
                     "count(*), min(ts), max(ts) FROM signals GROUP BY 1, 2, 3, 4, 5"),
    "silence_counts": ("SELECT silence_id, status, severity, n FROM silence_counts WHERE n > 0",
                       "SELECT silence_id, status, severity, count(*) FROM signals "
                       "WHERE silence_id IS NOT NULL GROUP BY 1, 2, 3"),
}


async def test_counters_match_the_signals_after_batches_duplicates_triage_and_pruning(tmp_path):
    """The counter tables are kept by triggers on every write path: whatever the mix, each
    counter is what counting the rows gives."""
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()

    def mixed(prefix: str, count: int) -> list[NewSignal]:
        return [NewSignal(f"{prefix}-{i % (count - 3)}",  # the last three repeat earlier ids
                          f"2026-11-0{1 + i % 5}T22:22:{i % 60:02d}.000000000Z", f"h{i % 4}",
                          f"R{i % 3}", ("low", "high", "critical")[i % 3], f"t{i % 2}", b"[]",
                          b"{}", None, silence_id=7 if i % 5 == 0 else None)
                for i in range(count)]

    try:
        await asyncio.gather(store.insert_signals(mixed("a", 40)),
                             store.insert_signals(mixed("b", 600)),  # past one statement
                             store.insert_signals(mixed("a", 25)))  # ids of the first again
        assert await store.insert_signals(mixed("a", 8)) == [False] * 8  # stored before
        await store.set_status([f"b-{i}" for i in range(0, 300, 2)], "resolved", None, "alice")
        await store.set_status([f"a-{i}" for i in range(5)], "acknowledged", None, "alice")
        await store.prune_resolved_signals("2026-11-03T00:00:00.000000000Z", 1000)
        await store.insert_signals(mixed("c", 10))
        with sqlite3.connect(tmp_path / "s.db") as conn:
            assert conn.execute("SELECT count(*) FROM signals").fetchone()[0] > 500
            for table, (counted, recounted) in RECOUNTS.items():
                assert sorted(conn.execute(counted).fetchall()) == sorted(
                    conn.execute(recounted).fetchall()), table
    finally:
        await store.close()
