"""`santamon migrate-db`: a SQLite database copied into PostgreSQL, resumable.

The SQLite file is first opened with the SQLite store, which upgrades it in place as
`santamon serve` would (a seed-schema file or any earlier version of ours), so there is one
schema to copy from. Every table is copied in chunks in the order of its row ids; each chunk
commits together with how far the copy got, so an interrupted copy goes on where it stopped.
The counters are rebuilt by the target's own triggers as the signals arrive. The target
remembers which source it is a copy of (a random id stored in the source), and any other data
in it makes the copy refuse to start.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import asyncpg

from ..common import AGENT_KEY_COLUMNS, ANALYST_KEY_COLUMNS, FORWARD_POSITION_KEY
from ..sqlite import SQLiteStore
from .reads import encode_position
from .schema import advisory_key
from .store import PostgresStore

CHUNK_ROWS = 5000
SOURCE_ID_KEY = "database_id"  # in the source's meta: which database this is
COPIED_FROM_KEY = "migrate-db:source"  # in the target's meta: the source's id
PROGRESS_KEY = "migrate-db:copied:"  # + table: the last row id copied
DONE_KEY = "migrate-db:done"
# Held for the whole copy: a second `migrate-db` into the same database is refused.
MIGRATE_LOCK = advisory_key("santamon migrate-db")


@dataclass(frozen=True)
class Table:
    name: str
    source_columns: str  # selected after the row id, in the order of `target_columns`
    target_columns: tuple[str, ...]
    # The target's identity column the copied values land in: its sequence must continue
    # after them.
    identity: str | None = None
    booleans: tuple[str, ...] = ()  # target columns SQLite keeps as 0 or 1


TABLES = [
    # Migrated signals get transaction id 0: they come before anything stored later, in the
    # order of their sequence numbers, which keeps the source's forwarding position valid.
    # The SQLite store keeps tags and context as the JSON bytes it was given.
    Table("signals", "signal_id, ts, host_id, rule_id, severity, title, CAST(tags AS TEXT), "
                     "CAST(context AS TEXT), received_at, COALESCE(status, 'open'), "
                     "rule_description, silence_id, shortened, original_context_bytes, seq, 0",
          ("signal_id", "ts", "host_id", "rule_id", "severity", "title", "tags", "context",
           "received_at", "status", "rule_description", "silence_id", "shortened",
           "original_context_bytes", "seq", "txid"), identity="seq"),
    Table("silences", "id, rule_id, host_id, severity, title, comment, created_by, "
                      "created_at, ends_at, expired_at, expired_by",
          ("id", "rule_id", "host_id", "severity", "title", "comment", "created_by",
           "created_at", "ends_at", "expired_at", "expired_by"), identity="id"),
    Table("signal_history", "id, signal_id, from_status, to_status, changed_at, note, actor",
          ("id", "signal_id", "from_status", "to_status", "changed_at", "note", "actor"),
          identity="id"),
    Table("shipped", "signal_id, shipped_at", ("signal_id", "shipped_at")),
    Table("agents", "agent_id, first_seen, last_seen, last_timestamp, version, os_version, "
                    "uptime_seconds, status, stale_since, alert_held, auth",
          ("agent_id", "first_seen", "last_seen", "last_timestamp", "version", "os_version",
           "uptime_seconds", "status", "stale_since", "alert_held", "auth"),
          booleans=("alert_held",)),
    Table("heartbeats", "agent_id, timestamp, version, os_version, uptime_seconds, received_at, "
                        "reasons",
          ("agent_id", "timestamp", "version", "os_version", "uptime_seconds", "received_at",
           "reasons")),
    Table("sessions", "token_hash, actor, created_at, expires_at, role, key_id",
          ("token_hash", "actor", "created_at", "expires_at", "role", "key_id")),
    Table("agent_keys", AGENT_KEY_COLUMNS, tuple(AGENT_KEY_COLUMNS.split(", "))),
    Table("analyst_keys", ANALYST_KEY_COLUMNS, tuple(ANALYST_KEY_COLUMNS.split(", "))),
    Table("connection_problems", "hour, client, kind, count, last_seen, detail",
          ("hour", "client", "kind", "count", "last_seen", "detail")),
]
# Tables that hold data of the service's own; `meta` and the counters follow from them.
DATA_TABLES = [table.name for table in TABLES]

ProgressCallback = Callable[[str, int, int], None]  # (table, rows copied, rows in all)


class MigrationRefused(Exception):
    """The target holds data that is not a (partial) copy of this source."""


class CountMismatch(Exception):
    """After the copy, a table of the target does not hold as many rows as the source's."""


@dataclass
class Outcome:
    counts: dict[str, int]  # rows per table, equal in both
    resumed: bool


async def migrate_sqlite(source: Path, target_url: str, *, chunk_rows: int = CHUNK_ROWS,
                         progress: ProgressCallback | None = None) -> Outcome:
    if not await asyncio.to_thread(source.is_file):  # else the SQLite store would create it
        raise FileNotFoundError(f"no SQLite database at {source}")
    sqlite_store = SQLiteStore(source)
    await sqlite_store.open()  # upgrades it to the current schema
    await sqlite_store.close()
    postgres_store = PostgresStore(target_url)
    await postgres_store.open()  # creates or upgrades the target's schema
    await postgres_store.close()

    async with aiosqlite.connect(source, isolation_level=None) as src:
        source_id = await _source_id(src)
        target = await asyncpg.connect(target_url)
        try:
            if not await target.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATE_LOCK):
                raise MigrationRefused("another migrate-db is copying into this database")
            resumed = await _claim(target, source_id, source)
            for table in TABLES:
                await _copy_table(src, target, table, chunk_rows, progress)
            await _copy_meta(src, target)
            counts = await _verify(src, target)
            await target.execute("INSERT INTO meta (key, value) VALUES ($1, 'yes') "
                                 "ON CONFLICT (key) DO NOTHING", DONE_KEY)
        finally:
            await target.close()
    return Outcome(counts, resumed)


async def _source_id(src: aiosqlite.Connection) -> str:
    await src.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                      (SOURCE_ID_KEY, uuid.uuid4().hex))
    async with src.execute("SELECT value FROM meta WHERE key = ?", (SOURCE_ID_KEY,)) as cur:
        (value,) = await cur.fetchone()
    return value


async def _claim(target: asyncpg.Connection, source_id: str, source: Path) -> bool:
    """Mark the target as a copy of this source; returns whether it already was one."""
    async with target.transaction():
        copied_from = await target.fetchval("SELECT value FROM meta WHERE key = $1",
                                            COPIED_FROM_KEY)
        if copied_from == source_id:
            return True
        if copied_from is not None:
            raise MigrationRefused("the target database holds a copy of another SQLite "
                                   "database; migrate into an empty database")
        held = {table: await target.fetchval(f"SELECT count(*) FROM {table}")
                for table in DATA_TABLES}
        if any(held.values()):
            found = ", ".join(f"{n:,} {table}" for table, n in held.items() if n)
            raise MigrationRefused(f"the target database already holds data ({found}) that "
                                   f"was not copied from {source}; migrate into an empty "
                                   "database")
        await target.execute("INSERT INTO meta (key, value) VALUES ($1, $2)",
                             COPIED_FROM_KEY, source_id)
    return False


async def _copy_table(src: aiosqlite.Connection, target: asyncpg.Connection, table: Table,
                      chunk_rows: int, progress: ProgressCallback | None) -> None:
    key = PROGRESS_KEY + table.name
    last = int(await target.fetchval("SELECT value FROM meta WHERE key = $1", key) or -2**63)
    total = await _scalar(src, f"SELECT count(*) FROM {table.name}")
    copied = await _scalar(src, f"SELECT count(*) FROM {table.name} WHERE rowid <= ?", last)
    if progress:
        progress(table.name, copied, total)
    while True:
        async with src.execute(
                f"SELECT rowid, {table.source_columns} FROM {table.name} WHERE rowid > ? "
                "ORDER BY rowid LIMIT ?", (last, chunk_rows)) as cur:
            rows = list(await cur.fetchall())
        if not rows:
            break
        last = rows[-1][0]
        booleans = [table.target_columns.index(column) for column in table.booleans]
        records = [tuple(bool(value) if i in booleans else value
                         for i, value in enumerate(row[1:])) for row in rows]
        async with target.transaction():
            await target.copy_records_to_table(
                table.name, records=records, columns=table.target_columns)
            if table.identity is not None:
                await target.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{table.identity}'),"
                    f" (SELECT max({table.identity}) FROM {table.name}))")
            await target.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, str(last))
        copied += len(rows)
        if progress:
            progress(table.name, copied, total)


async def _copy_meta(src: aiosqlite.Connection, target: asyncpg.Connection) -> None:
    async with src.execute("SELECT key, value FROM meta WHERE key != ?",
                           (SOURCE_ID_KEY,)) as cur:
        rows = [tuple(row) for row in await cur.fetchall()]
    # The SQLite store's position is a sequence number; migrated signals all carry
    # transaction id 0, so the same place is (0, that number) here.
    rows = [(key, encode_position(0, int(value)) if key == FORWARD_POSITION_KEY else value)
            for key, value in rows]
    await target.executemany("INSERT INTO meta (key, value) VALUES ($1, $2) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", rows)


async def _verify(src: aiosqlite.Connection, target: asyncpg.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    mismatches = []
    for table in DATA_TABLES:
        expected = await _scalar(src, f"SELECT count(*) FROM {table}")
        found = await target.fetchval(f"SELECT count(*) FROM {table}")
        counts[table] = expected
        if found != expected:
            mismatches.append(f"{table}: {expected:,} in the source, {found:,} in the target")
    counted = await target.fetchval("SELECT coalesce(sum(n), 0) FROM signal_counts")
    if counted != counts["signals"]:
        mismatches.append(f"signal_counts: {counted:,} counted, {counts['signals']:,} signals")
    if mismatches:
        raise CountMismatch("; ".join(mismatches))
    return counts


async def _scalar(conn: aiosqlite.Connection, sql: str, *params: object) -> int:
    async with conn.execute(sql, params) as cur:
        (value,) = await cur.fetchone()
    return value
