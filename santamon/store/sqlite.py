"""SQLite store: one group-commit writer (santamon/store/writer.py) and a pool of aiosqlite
readers, which under WAL never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from .. import timeutil
from ..models import AgentQuery, Cursor, HeartbeatIn, SignalQuery
from . import writer
from .base import (
    AgentReturn,
    ForwardBatch,
    NewSignal,
    SignalPage,
    StatusResult,
    StoreUnavailable,
)
from .schema import migrate, pragma
from .writer import FORWARD_POSITION_KEY, CommitObserver, Runner, WriteOp, placeholders

log = logging.getLogger(__name__)

DAY_NS = 86_400 * 1_000_000_000

SEARCH_BY_RULE_MAX_ROWS = 20_000  # fewer matches than this: read them through the rule index
SEARCH_MAX_TITLES = 500  # beyond this many matching titles, search filters while it walks

CHECKPOINT_INTERVAL_SECONDS = 1.0
CHECKPOINT_WAIT_MS = 20  # how long a TRUNCATE may hold writers back waiting for readers
# Each TRUNCATE stalls writers for ~0.1 s at 1M rows (a 64 MB cap put ingest p99 at 120 ms
# against 20 ms without one), so the cap is high: it bounds the log without costing ingest.
WAL_RESTART_BYTES = 1024 * 1024 * 1024

AGENT_FIELDS = ("agent_id", "timestamp", "version", "os_version", "uptime_seconds",
                "received_at", "first_seen", "last_seen", "status", "stale_since")
SIGNAL_COLUMNS = ("signal_id, ts, host_id, rule_id, rule_description, severity, title, tags, "
                  "context, status, received_at")

# Every connection; the writer adds its own below. A 200 means the row survives power loss
# too (synchronous=FULL): on this kind of machine NORMAL gained only ~4 % of ingest.
CONNECTION_PRAGMAS = ["busy_timeout = 10000", "synchronous = FULL", "foreign_keys = ON",
                      "temp_store = MEMORY"]
WRITER_PRAGMAS = [*CONNECTION_PRAGMAS, "cache_size = -32000",
                  # checkpoints run beside the writer (see _checkpoint_loop), not in its commits
                  "wal_autocheckpoint = 0"]


def signal_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row that starts with SIGNAL_COLUMNS, as the API shows a signal (by position: name
    lookups on sqlite3.Row cost more than the rest of the page)."""
    return {
        "signal_id": row[0],
        "ts": row[1],
        "host_id": row[2],
        "rule_id": row[3],
        "rule_description": row[4],
        "severity": row[5],
        "title": row[6],
        "tags": orjson.Fragment(row[7] or "[]"),
        "context": orjson.Fragment(row[8] or "{}"),
        "status": row[9],
        "received_at": row[10],
    }


class SQLiteStore:
    def __init__(self, path: str | Path, *, readers: int = 4,
                 on_commit: CommitObserver | None = None) -> None:
        self.path = Path(path)
        self._on_commit = on_commit
        self._reader_count = readers
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_conns: list[aiosqlite.Connection] = []
        self._writer: writer.Writer | None = None
        self._maintenance_conn: aiosqlite.Connection | None = None  # upgrades, checkpoints
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._open()
        except BaseException:
            # Each aiosqlite connection is a thread that keeps the process alive until it is
            # closed: a start that failed here (a file that is not a database, a schema newer
            # than this server, an unwritable path) must not leave one behind.
            await self.close()
            raise

    async def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Plain sqlite3 first: aiosqlite leaves its thread to finish on its own when a connect
        # fails, too late for a process that is exiting because of it.
        await asyncio.to_thread(_check_opens, self.path)
        self._maintenance_conn = await self._connect(readonly=False)
        await migrate(self._maintenance_conn)
        # WAL is a property of the file: set once, after any upgrade.
        await pragma(self._maintenance_conn, "journal_mode = WAL")
        self._writer = writer.Writer(self.path, WRITER_PRAGMAS, asyncio.get_running_loop(),
                                     self._on_commit)
        await self._writer.start()
        for _ in range(self._reader_count):
            conn = await self._connect(readonly=True)
            self._reader_conns.append(conn)
            self._readers.put_nowait(conn)
        # A checkpoint that must wait for readers holds writers back meanwhile: it gives up
        # after a moment and tries again a second later rather than stall ingest.
        await pragma(self._maintenance_conn, f"busy_timeout = {CHECKPOINT_WAIT_MS}")
        self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(),
                                                    name="santamon-checkpoint")

    async def _connect(self, *, readonly: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            for setting in CONNECTION_PRAGMAS:
                await pragma(conn, setting)
            if readonly:
                await pragma(conn, "cache_size = -8000")  # 8 MB each: RSS stays under 200 MB
                await pragma(conn, "query_only = ON")
                conn.row_factory = sqlite3.Row
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._writer is not None:
            await self._writer.stop()  # commits everything already queued
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
        for conn in self._reader_conns:
            await conn.close()
        if self._maintenance_conn is not None:
            with contextlib.suppress(sqlite3.Error):
                await pragma(self._maintenance_conn, "wal_checkpoint(TRUNCATE)")
                await pragma(self._maintenance_conn, "optimize")
            await self._maintenance_conn.close()

    async def _checkpoint_loop(self) -> None:
        """Copy committed pages from the WAL into the file on a connection of its own.

        Inside the writer's commits (SQLite's default) a checkpoint stalls every commit that
        triggers one; here it overlaps them, and a PASSIVE checkpoint never waits for anyone.
        """
        assert self._maintenance_conn is not None
        wal = self.path.with_name(self.path.name + "-wal")
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_SECONDS)
            try:
                busy, frames, copied = await pragma(self._maintenance_conn,
                                                    "wal_checkpoint(PASSIVE)")
                # Under steady reads and writes the log is never found idle, so it is never
                # started over and grows without end (seen: 2.3 GB). Once it is past the cap
                # and everything in it is already copied, TRUNCATE only has to wait (at most
                # CHECKPOINT_WAIT_MS, holding writers back) for readers to leave it.
                if (not busy and frames == copied and wal.exists()
                        and wal.stat().st_size > WAL_RESTART_BYTES):
                    await pragma(self._maintenance_conn, "wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed (will retry): %s", exc)

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def _submit(self, run: Runner, payload: Any, *, in_transaction: bool = True) -> Any:
        if self._closing or self._writer is None:
            raise StoreUnavailable("the store is not open")
        future = asyncio.get_running_loop().create_future()
        self._writer.submit(WriteOp(run, payload, future, in_transaction))
        return await future

    # -- writes -----------------------------------------------------------------------------

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        return await self._submit(writer.insert_signals, signals)

    async def record_heartbeat(self, heartbeat: HeartbeatIn) -> AgentReturn | None:
        return await self._submit(writer.record_heartbeats, heartbeat)

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        return await self._submit(writer.set_status, (signal_ids, status, note, actor))

    async def check_writable(self) -> None:
        await self._submit(writer.touch, None)

    async def mark_stale_agents(self, cutoff: str, threshold_seconds: float) -> list[str]:
        return await self._submit(writer.mark_stale, (cutoff, threshold_seconds))

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        return await self._submit(writer.prune_heartbeats, (cutoff, limit))

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        return await self._submit(writer.prune_signals, (cutoff, limit))

    async def compact(self) -> None:
        await self._submit(writer.compact, None, in_transaction=False)

    async def mark_shipped(self, signal_ids: list[str], position: int) -> None:
        await self._submit(writer.mark_shipped, (signal_ids, position))

    async def _forward_position(self, conn: aiosqlite.Connection) -> int:
        async with conn.execute("SELECT value FROM meta WHERE key = ?",
                                (FORWARD_POSITION_KEY,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def unshipped(self, limit: int, after: int | None = None) -> ForwardBatch:
        async with self._reader() as conn:
            position = await self._forward_position(conn) if after is None else after
            async with conn.execute(
                    f"SELECT {SIGNAL_COLUMNS}, rowid, EXISTS (SELECT 1 FROM shipped "
                    "WHERE shipped.signal_id = signals.signal_id) AS is_shipped "
                    "FROM signals WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (position, limit)) as cur:
                rows = await cur.fetchall()
        pending = [row for row in rows if not row[12]]  # not shipped
        return ForwardBatch([signal_row(row) for row in pending], [row[11] for row in pending],
                            rows[-1][11] if rows else position, len(rows) == limit)

    async def forward_backlog(self, severities: list[str]) -> int:
        async with self._reader() as conn:
            position = await self._forward_position(conn)
            async with conn.execute(
                    "SELECT count(*) FROM signals WHERE rowid > ? AND severity IN "
                    f"({placeholders(len(severities))}) AND NOT EXISTS (SELECT 1 FROM shipped "
                    "WHERE shipped.signal_id = signals.signal_id)",
                    (position, *severities)) as cur:
                (count,) = await cur.fetchone()
        return count

    # -- reads ------------------------------------------------------------------------------

    async def list_signals(self, query: SignalQuery) -> SignalPage:
        where: list[str] = []
        params: list[Any] = []
        if query.status != "all":
            where.append("status = ?")
            params.append(query.status)
        if query.severity:
            where.append(f"severity IN ({placeholders(len(query.severity))})")
            params.extend(query.severity)
        if query.host_id:
            where.append("host_id = ?")
            params.append(query.host_id)
        if query.rule_id:
            where.append("rule_id = ?")
            params.append(query.rule_id)
        search_by_rule = False
        if query.search:
            pattern = "%" + _escape_like(query.search) + "%"
            like = "(title LIKE ? ESCAPE '\\' OR rule_id LIKE ? ESCAPE '\\')"
            pairs = await self._matching_titles(pattern)
            if not pairs:
                return SignalPage([], None)
            if len(pairs) > SEARCH_MAX_TITLES:
                # A broad search matches most signals: a newest-first walk finds a page fast.
                where.append(like)
                params.extend((pattern, pattern))
            else:
                rules = sorted({rule for rule, _, _ in pairs})
                titles = sorted({title for _, title, _ in pairs})
                where.append(f"rule_id IN ({placeholders(len(rules))}) AND title IN "
                             f"({placeholders(len(titles))}) AND {like}")
                params.extend((*rules, *titles, pattern, pattern))
                # The rule index carries status and severity: it answers a filtered search,
                # or one with few matches, without reading rows. A broad unfiltered one
                # walks newest first instead and stops at a page.
                search_by_rule = (query.status != "all" or query.severity is not None
                                  or sum(n for *_, n in pairs) <= SEARCH_BY_RULE_MAX_ROWS)
        if query.since:
            where.append("ts >= ?")
            params.append(query.since)
        if query.until:
            where.append("ts < ?")
            params.append(query.until)
        if query.cursor:
            # `ts <= ?` bounds the index range; the OR then skips the rows already returned.
            where.append("ts <= ? AND (ts < ? OR rowid < ?)")
            params.extend((query.cursor.ts, query.cursor.ts, query.cursor.rowid))
        sql = (f"SELECT {SIGNAL_COLUMNS}, rowid FROM signals "
               f"INDEXED BY {_index_for(query, search_by_rule)}"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY ts DESC, rowid DESC LIMIT ?")
        params.append(query.limit + 1)
        async with self._reader() as conn, conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        next_cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            next_cursor = Cursor(ts=last[1], rowid=last[11]).encode()
            rows = rows[:query.limit]
        return SignalPage([signal_row(row) for row in rows], next_cursor)

    async def _matching_titles(self, pattern: str) -> list[tuple[str, str, int]]:
        async with self._reader() as conn, conn.execute(
                "SELECT rule_id, title, n FROM signal_titles WHERE n > 0 AND (title LIKE ? "
                "ESCAPE '\\' OR rule_id LIKE ? ESCAPE '\\') LIMIT ?",
                (pattern, pattern, SEARCH_MAX_TITLES + 1)) as cur:
            return [tuple(row) for row in await cur.fetchall()]

    async def get_signal(self, signal_id: str) -> dict[str, Any] | None:
        async with self._reader() as conn:
            async with conn.execute(
                    f"SELECT {SIGNAL_COLUMNS}, (SELECT shipped_at FROM shipped "
                    "WHERE shipped.signal_id = signals.signal_id) AS shipped_at "
                    "FROM signals WHERE signal_id = ?", (signal_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            async with conn.execute(
                    "SELECT from_status, to_status, changed_at, note, actor FROM signal_history "
                    "WHERE signal_id = ? ORDER BY id", (signal_id,)) as cur:
                history = [dict(entry) for entry in await cur.fetchall()]
        signal = signal_row(row)
        signal["shipped_at"] = row[11]
        signal["history"] = history
        return signal

    async def list_agents(self, query: AgentQuery) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        if query.status != "all":
            where.append("status = ?")
            params.append(query.status)
        if query.since:
            where.append("last_seen >= ?")
            params.append(query.since)
        sql = ("SELECT agent_id, last_timestamp AS timestamp, version, os_version, "
               "uptime_seconds, last_seen AS received_at, first_seen, last_seen, status, "
               "stale_since FROM agents"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY status = 'stale' DESC, last_seen DESC, agent_id LIMIT ?")
        params.append(query.limit)
        async with self._reader() as conn, conn.execute(sql, params) as cur:
            return [dict(zip(AGENT_FIELDS, row, strict=True)) for row in await cur.fetchall()]

    async def stats(self) -> dict[str, Any]:
        since_24h = timeutil.format_utc(timeutil.now_ns() - DAY_NS)
        async with self._reader() as conn:
            async def scalar(sql: str, *params: Any) -> int:
                async with conn.execute(sql, params) as cur:
                    row = await cur.fetchone()
                    return row[0] or 0

            async def counts(sql: str) -> dict[str, int]:
                async with conn.execute(sql) as cur:
                    return {row[0]: row[1] for row in await cur.fetchall()}

            last_24h = await scalar("SELECT count(*) FROM signals WHERE ts >= ?", since_24h)
            async with conn.execute("SELECT severity, status, n FROM signal_counts "
                                    "WHERE n > 0") as cur:
                by_severity_status = await cur.fetchall()
            by_host = await counts("SELECT host_id, n FROM host_counts WHERE n > 0 "
                                   "ORDER BY n DESC, host_id LIMIT 10")
            top_rules = await counts("SELECT rule_id, n FROM rule_counts WHERE n > 0 "
                                     "ORDER BY n DESC, rule_id LIMIT 10")
            agents = await counts("SELECT status, count(*) FROM agents GROUP BY status")
        by_severity: dict[str, int] = {}
        by_status: dict[str, int] = {}
        open_by_severity: dict[str, int] = {}
        for severity, status, n in by_severity_status:
            by_severity[severity] = by_severity.get(severity, 0) + n
            by_status[status] = by_status.get(status, 0) + n
            if status == "open":
                open_by_severity[severity] = n
        return {
            "total_signals": sum(by_status.values()),
            "last_24h": last_24h,
            "by_severity": by_severity,
            "by_status": by_status,
            "open_by_severity": open_by_severity,
            "by_host": by_host,
            "top_rules": top_rules,
            "agents": {"active": agents.get("active", 0), "stale": agents.get("stale", 0),
                       "total": sum(agents.values())},
        }

    async def signal_volume(self, since: str, until: str,
                            bucket_seconds: int) -> dict[int, dict[str, int]]:
        # Stored times are fixed-width UTC, so the first 19 characters are whole seconds.
        # SQLite's % truncates toward zero: the double modulo floors, so a time before 1970
        # falls into the bucket that starts before it.
        sql = ("SELECT s - ((s % ?1) + ?1) % ?1 AS start, severity, count(*) FROM ("
               "SELECT CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER) AS s, severity "
               "FROM signals WHERE ts >= ?2 AND ts < ?3) GROUP BY start, severity")
        volume: dict[int, dict[str, int]] = {}
        async with self._reader() as conn, conn.execute(
                sql, (bucket_seconds, since, until)) as cur:
            for start, severity, count in await cur.fetchall():
                volume.setdefault(start, {})[severity] = count
        return volume

    async def first_signal_ts(self, after: str | None = None) -> str | None:
        sql, params = "SELECT min(ts) FROM signals", ()
        if after is not None:
            sql, params = sql + " WHERE ts > ?", (after,)
        async with self._reader() as conn, conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return row[0] if row else None


def _check_opens(path: Path) -> None:
    """Raise sqlite3.Error unless `path` opens as a database (or can be created as one)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA schema_version").fetchone()


def _index_for(query: SignalQuery, search_by_rule: bool) -> str:
    """The index a page of signals is read through, named rather than left to the planner.

    Every index ends in ts (then rowid), so each serves the newest-first order; the narrowest
    filter picks it, and status and severity ride inside the host, rule and status indexes.
    Planner statistics misled here: sampled ones called a status as rare as a host, full
    ones made 2 % acknowledged look like a third of the table and walked the ts index.
    """
    if query.host_id:
        return "idx_signals_host_ts"
    if query.rule_id or search_by_rule:
        return "idx_signals_rule_ts"
    if query.status != "all":
        return "idx_signals_status_ts"
    return "idx_signals_ts"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
