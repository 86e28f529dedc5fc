"""The SQLite store's own housekeeping: the write-ahead log stays bounded."""

import asyncio
import sqlite3

from santamon.store import NewSignal, SQLiteStore
from santamon.store import sqlite as store_module


def signals(prefix: str, count: int) -> list[NewSignal]:
    return [NewSignal(f"{prefix}-{i}", "2026-11-03T22:22:07.000000000Z", "h", "R", "low", "t",
                      b"[]", b'{"blob": "' + b"x" * 4000 + b'"}', "open", None)
            for i in range(count)]


async def test_wal_is_emptied_once_past_its_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "WAL_RESTART_BYTES", 256 * 1024)
    monkeypatch.setattr(store_module, "CHECKPOINT_INTERVAL_SECONDS", 0.05)
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


async def test_a_writer_bug_fails_the_callers_instead_of_hanging_them(tmp_path, monkeypatch):
    from santamon.store import StoreUnavailable, writer

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


async def test_one_failing_write_does_not_fail_the_writes_committed_with_it(tmp_path):
    def broken(conn, payloads, now):
        conn.execute("INSERT INTO meta (key, value) VALUES ('half-written', 'x')")
        raise ValueError("bad operation")

    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        outcomes = await asyncio.gather(
            store.insert_signals(signals("a", 3)),
            store._submit(broken, None),
            store.insert_signals(signals("b", 2)),
            return_exceptions=True)
        assert outcomes[0] == [True] * 3 and outcomes[2] == [True] * 2
        assert isinstance(outcomes[1], ValueError)
        assert await store.forward_backlog(["low"]) == 5
        with sqlite3.connect(tmp_path / "s.db") as conn:  # the failed one left nothing
            assert conn.execute("SELECT count(*) FROM meta WHERE key = 'half-written'"
                                ).fetchone() == (0,)
    finally:
        await store.close()
