"""Keeping the SQLite file healthy: WAL checkpoints, planner statistics, VACUUM, and noticing
when the file is deleted or replaced under the running server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import aiosqlite

from ..base import StoreUnavailable

log = logging.getLogger(__name__)

# A checkpoint runs every second, or as soon as this much was added to the log since the last:
# under heavy ingest (~100 MB of log a second on the 1M-signal file) once a second let the log
# reach 110-210 MB before the writer started it over; with this, ~60 MB.
CHECKPOINT_INTERVAL_SECONDS = 1.0
CHECKPOINT_BYTES = 8 * 1024 * 1024
CHECKPOINT_POLL_SECONDS = 0.1  # how often the log's size is looked at
# `main.` always: a checkpoint without a schema name covers every database of the connection,
# and once a connection has used the temp database (the version 2 upgrade builds a temp table
# on the maintenance connection) that one answers SQLITE_LOCKED ("database table is locked").
CHECKPOINT = "main.wal_checkpoint"
CHECKPOINT_WAIT_MS = 20  # how long starting the log over may wait for readers to leave it
# Past this size, once a checkpoint has copied all of it, the writer starts the log over. The
# log then stays under about this plus a checkpoint's worth plus what is committed while the
# writer gets to it (README, Storage).
WAL_RESTART_BYTES = 16 * 1024 * 1024
FILE_LOST_LOG_EVERY_SECONDS = 60.0
VACUUM_BUSY_TIMEOUT_MS = 60_000


async def pragma(conn: aiosqlite.Connection, statement: str) -> tuple[object, ...] | None:
    """Run a PRAGMA and finish its statement, so no half-read result keeps a lock."""
    async with conn.execute(f"PRAGMA {statement}") as cur:
        return await cur.fetchone()


def file_paths(path: Path) -> list[Path]:
    """The database and the files SQLite keeps beside it in WAL mode."""
    return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]


def size_bytes(path: Path) -> int:
    total = 0
    for file in file_paths(path):
        with contextlib.suppress(OSError):
            total += file.stat().st_size
    return total


class FileIdentity:
    """The database and its WAL as they were opened. Deleting or replacing either while the
    server runs would let commits land in a file nobody will ever open again: every
    acknowledgement would be a lie, so the store refuses them (503) until it is restarted on
    a real file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._identities = {file: _identity(file) for file in file_paths(path)[:2]
                            if file.exists()}
        self._last_logged = float("-inf")

    def check(self) -> None:
        lost = [file for file, identity in self._identities.items()
                if _identity(file) != identity]
        if lost:
            message = (f"{lost[0]} was deleted or replaced while the server was running; "
                       "nothing more is acknowledged until the service is restarted "
                       "(restore the database first if it was deleted)")
            if time.monotonic() - self._last_logged >= FILE_LOST_LOG_EVERY_SECONDS:
                self._last_logged = time.monotonic()
                log.error("%s", message)
            raise StoreUnavailable(message)


def _identity(file: Path) -> tuple[int, int] | None:
    try:
        stat = file.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


async def checkpoint_forever(conn: aiosqlite.Connection, path: Path,
                             restart_log: Callable[[], Awaitable[None]]) -> None:
    """Copy committed pages from the WAL into the file on a connection of its own, and have
    the writer start the log over (`restart_log`, a RestartLog on the writer) once it is past
    WAL_RESTART_BYTES and all copied.

    Inside the writer's commits (SQLite's default) a checkpoint stalls every commit that
    triggers one; here it overlaps them, and a PASSIVE checkpoint never waits for anyone. But
    under steady writes the log is never found with everything copied at the moment a commit
    begins, which is the only moment SQLite starts it over, so it grew without end (seen:
    2.3 GB); hence the restart.
    """
    wal = file_paths(path)[1]
    last_at, last_size = time.monotonic(), _size(wal)
    while True:
        await asyncio.sleep(CHECKPOINT_POLL_SECONDS)
        size = _size(wal)
        if (size - last_size < CHECKPOINT_BYTES
                and time.monotonic() - last_at < CHECKPOINT_INTERVAL_SECONDS):
            continue
        try:
            busy, frames, copied = await pragma(conn, f"{CHECKPOINT}(PASSIVE)")
            if not busy and frames == copied and size > WAL_RESTART_BYTES:
                await restart_log()
        except (sqlite3.Error, StoreUnavailable) as exc:
            log.warning("WAL checkpoint failed (will retry): %s", exc)
        last_at, last_size = time.monotonic(), _size(wal)


async def analyze(conn: aiosqlite.Connection) -> None:
    """Planner statistics after an upgrade (0.6 s at 1M rows). A sampled ANALYZE reads only the
    first rows of each index and told the planner a status was as rare as a host."""
    await conn.execute("ANALYZE")


async def finish(conn: aiosqlite.Connection) -> None:
    """On close: an empty WAL left behind, statistics refreshed where they drifted."""
    with contextlib.suppress(sqlite3.Error):
        await pragma(conn, f"{CHECKPOINT}(TRUNCATE)")
        await pragma(conn, "optimize")


@dataclass(slots=True)
class RestartLog:
    """Start the WAL over, from the writer's own connection between two commits.

    What is left to copy is what was committed since the checkpoint that asked for this, so it
    takes a few milliseconds, during which commits queue up and then go as one. Run from a
    connection beside the writer, it made the writer back off and retry instead (SQLite's busy
    handler sleeps in steps of up to 100 ms): ingest p99 went from 20 to 120 ms.
    """

    outside_transaction: ClassVar[bool] = True

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RestartLog], now: str) -> list[None]:
        (busy_timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
        # Readers still in the log hold it up; wait for them only briefly, then try again
        # after the next checkpoint.
        conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
        try:
            conn.execute(f"PRAGMA {CHECKPOINT}(TRUNCATE)").fetchall()
        finally:
            conn.execute(f"PRAGMA busy_timeout = {busy_timeout}")
        return [None] * len(ops)


@dataclass(slots=True)
class Compact:
    """Retention's last step, through the writer so that it never competes with a commit for
    the write lock: empty the WAL, re-analyse the tables that changed a lot."""

    outside_transaction: ClassVar[bool] = True

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[Compact], now: str) -> list[None]:
        conn.execute(f"PRAGMA {CHECKPOINT}(TRUNCATE)").fetchall()
        conn.execute("PRAGMA optimize").fetchall()
        return [None] * len(ops)


def vacuum(path: Path) -> tuple[int, int]:
    """Rebuild the file without its free pages; returns the sizes before and after.

    Safe while the server runs: cursors and the forwarder's position are sequence numbers,
    which VACUUM keeps. It holds the write lock throughout, so ingest answers 503 (agents
    retry) until it is done.
    """
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}")
    before = size_bytes(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA busy_timeout = {VACUUM_BUSY_TIMEOUT_MS}")
        conn.execute("VACUUM")
        conn.execute(f"PRAGMA {CHECKPOINT}(TRUNCATE)").fetchall()
    return before, size_bytes(path)


def check_opens(path: Path) -> None:
    """Raise sqlite3.Error unless `path` opens as a database (or can be created as one)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA schema_version").fetchone()
