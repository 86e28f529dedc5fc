"""SQLite store: one group-commit writer and a pool of readers, all through aiosqlite.

Every write is an operation queued to a single writer task. The writer takes whatever has
queued up, runs it as one transaction (merging signal inserts and heartbeats into one
`executemany` each), commits, and only then answers each caller. Many concurrent ingests thus
share one fsync, and a caller never hears "stored" before its row is durable. Readers use their
own connections; under WAL they never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from .. import timeutil
from ..models import AgentQuery, Cursor, HeartbeatIn, SignalQuery
from .base import (
    AgentReturn,
    ForwardBatch,
    NewSignal,
    SignalPage,
    StatusResult,
    StoreUnavailable,
)
from .schema import migrate, pragma

log = logging.getLogger(__name__)

MAX_OPS_PER_COMMIT = 2000
SQL_PARAMS_PER_QUERY = 500  # well under SQLite's host-parameter limit
DAY_NS = 86_400 * 1_000_000_000
SEARCH_BY_RULE_MAX_ROWS = 20_000
SEARCH_MAX_TITLES = 500  # beyond this many matching titles, search filters while it walks

SIGNAL_COLUMNS = ("signal_id, ts, host_id, rule_id, rule_description, severity, title, tags, "
                  "context, status, received_at")

Runner = Callable[[aiosqlite.Connection, list[Any], str], Awaitable[list[Any]]]


STALE_RULE_ID = "AGENT-STALE"
SYSTEM_ACTOR = "system"
FORWARD_POSITION_KEY = "forward_position"


@dataclass(slots=True)
class _WriteOp:
    run: Runner  # runs every queued op that shares this runner, in one go
    payload: Any
    in_transaction: bool = True  # False: runs alone after the batch's commit (checkpoints)
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())


_STOP = object()


def _chunks(items: list[Any], size: int = SQL_PARAMS_PER_QUERY) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


def signal_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "signal_id": row["signal_id"],
        "ts": row["ts"],
        "host_id": row["host_id"],
        "rule_id": row["rule_id"],
        "rule_description": row["rule_description"],
        "severity": row["severity"],
        "title": row["title"],
        "tags": orjson.Fragment(row["tags"] or "[]"),
        "context": orjson.Fragment(row["context"] or "{}"),
        "status": row["status"],
        "received_at": row["received_at"],
    }


class SQLiteStore:
    def __init__(self, path: str | Path, *, readers: int = 4,
                 on_commit: Callable[[int, float], None] | None = None) -> None:
        self.path = Path(path)
        self._on_commit = on_commit  # (operations in the commit, seconds it took)
        self._reader_count = readers
        self._writer_conn: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_conns: list[aiosqlite.Connection] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_conn = await self._connect(readonly=False)
        await migrate(self._writer_conn)
        # WAL is a property of the file: set once by the writer, after any upgrade.
        await pragma(self._writer_conn, "journal_mode = WAL")
        for _ in range(self._reader_count):
            conn = await self._connect(readonly=True)
            self._reader_conns.append(conn)
            self._readers.put_nowait(conn)
        self._writer_task = asyncio.create_task(self._write_loop(), name="santamon-writer")

    async def _connect(self, *, readonly: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        for setting in ("busy_timeout = 10000",
                        "synchronous = FULL",  # a 200 means the row survives power loss too
                        "foreign_keys = ON",
                        "temp_store = MEMORY",
                        f"cache_size = {-16000 if readonly else -32000}"):
            await pragma(conn, setting)
        if readonly:
            await pragma(conn, "query_only = ON")
            conn.row_factory = sqlite3.Row
        return conn

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._writer_task is not None:
            self._queue.put_nowait(_STOP)
            await self._writer_task
        for conn in self._reader_conns:
            await conn.close()
        if self._writer_conn is not None:
            with contextlib.suppress(sqlite3.Error):
                await pragma(self._writer_conn, "optimize")
            await self._writer_conn.close()

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    # -- the writer -------------------------------------------------------------------------

    async def _submit(self, run: Runner, payload: Any, *, in_transaction: bool = True) -> Any:
        if self._closing:
            raise StoreUnavailable("the store is shutting down")
        op = _WriteOp(run, payload, in_transaction)
        self._queue.put_nowait(op)
        return await op.future

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < MAX_OPS_PER_COMMIT and not self._queue.empty():
                op = self._queue.get_nowait()
                if op is _STOP:
                    stopping = True
                    break
                batch.append(op)
            await self._commit(batch)

    async def _commit(self, batch: list[_WriteOp]) -> None:
        started = time.perf_counter()
        outside = [op for op in batch if not op.in_transaction]
        if outside:
            batch = [op for op in batch if op.in_transaction]
            if batch:
                await self._commit(batch)
            for op in outside:
                await self._commit_alone(op)
            return
        try:
            results = await self._transaction(batch)
        except Exception as exc:  # every caller must hear about it
            if len(batch) > 1:
                # One bad operation must not fail the others: retry each on its own.
                for op in batch:
                    await self._commit([op])
                return
            op = batch[0]
            if isinstance(exc, sqlite3.Error):
                log.error("write failed: %s", exc)
                exc = StoreUnavailable(str(exc))
            if not op.future.done():
                op.future.set_exception(exc)
            return
        if self._on_commit is not None:
            self._on_commit(len(batch), time.perf_counter() - started)
        for op, result in zip(batch, results, strict=True):
            if not op.future.done():
                op.future.set_result(result)

    async def _commit_alone(self, op: _WriteOp) -> None:
        try:
            (result,) = await op.run(self._writer_conn, [op.payload], timeutil.utc_now())
        except sqlite3.Error as exc:
            log.error("maintenance write failed: %s", exc)
            if not op.future.done():
                op.future.set_exception(StoreUnavailable(str(exc)))
            return
        if not op.future.done():
            op.future.set_result(result)

    async def _transaction(self, batch: list[_WriteOp]) -> list[Any]:
        conn = self._writer_conn
        assert conn is not None
        now = timeutil.utc_now()
        groups: dict[Runner, list[_WriteOp]] = {}
        for op in batch:
            groups.setdefault(op.run, []).append(op)
        results: dict[int, Any] = {}
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for run, ops in groups.items():
                outcome = await run(conn, [op.payload for op in ops], now)
                results.update(zip(map(id, ops), outcome, strict=True))
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            raise
        return [results[id(op)] for op in batch]

    # -- writes -----------------------------------------------------------------------------

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        return await self._submit(_insert_signals, signals)

    async def record_heartbeat(self, heartbeat: HeartbeatIn) -> AgentReturn | None:
        return await self._submit(_record_heartbeats, heartbeat)

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        return await self._submit(_set_status, (signal_ids, status, note, actor))

    async def check_writable(self) -> None:
        await self._submit(_touch, None)

    async def mark_stale_agents(self, cutoff: str, threshold_seconds: float) -> list[str]:
        return await self._submit(_mark_stale, (cutoff, threshold_seconds))

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        return await self._submit(_prune_heartbeats, (cutoff, limit))

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        return await self._submit(_prune_signals, (cutoff, limit))

    async def compact(self) -> None:
        await self._submit(_compact, None, in_transaction=False)

    async def mark_shipped(self, signal_ids: list[str], position: int) -> None:
        await self._submit(_mark_shipped, (signal_ids, position))

    async def _forward_position(self, conn: aiosqlite.Connection) -> int:
        async with conn.execute("SELECT value FROM meta WHERE key = ?",
                                (FORWARD_POSITION_KEY,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def unshipped(self, limit: int) -> ForwardBatch:
        async with self._reader() as conn:
            position = await self._forward_position(conn)
            async with conn.execute(
                    f"SELECT rowid, {SIGNAL_COLUMNS}, EXISTS (SELECT 1 FROM shipped "
                    "WHERE shipped.signal_id = signals.signal_id) AS is_shipped "
                    "FROM signals WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (position, limit)) as cur:
                rows = await cur.fetchall()
        pending = [row for row in rows if not row["is_shipped"]]
        return ForwardBatch([signal_row(row) for row in pending],
                            [row["rowid"] for row in pending],
                            rows[-1]["rowid"] if rows else position, len(rows) == limit)

    async def forward_backlog(self, severities: list[str]) -> int:
        async with self._reader() as conn:
            position = await self._forward_position(conn)
            async with conn.execute(
                    "SELECT count(*) FROM signals WHERE rowid > ? AND severity IN "
                    f"({_placeholders(len(severities))}) AND NOT EXISTS (SELECT 1 FROM shipped "
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
            where.append(f"severity IN ({_placeholders(len(query.severity))})")
            params.extend(query.severity)
        if query.host_id:
            where.append("host_id = ?")
            params.append(query.host_id)
        if query.rule_id:
            where.append("rule_id = ?")
            params.append(query.rule_id)
        if query.search:
            pattern = "%" + _escape_like(query.search) + "%"
            like = "(title LIKE ? ESCAPE '\\' OR rule_id LIKE ? ESCAPE '\\')"
            pairs = await self._matching_titles(pattern)
            if not pairs:
                return SignalPage([], None)
            if len(pairs) > SEARCH_MAX_TITLES:
                # A broad search matches most signals: the newest-first walk finds a page fast.
                where.append(like)
                params.extend((pattern, pattern))
            else:
                rules = sorted({rule for rule, _, _ in pairs})
                titles = sorted({title for _, title, _ in pairs})
                # Few matches: find them through the rule index, then sort. Many: walk the
                # newest-first index and keep the matches (unary + keeps the rule index out).
                few = sum(n for *_, n in pairs) <= SEARCH_BY_RULE_MAX_ROWS
                where.append(f"{'' if few else '+'}rule_id IN ({_placeholders(len(rules))}) "
                             f"AND title IN ({_placeholders(len(titles))}) AND {like}")
                params.extend((*rules, *titles, pattern, pattern))
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
        sql = (f"SELECT rowid, {SIGNAL_COLUMNS} FROM signals"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY ts DESC, rowid DESC LIMIT ?")
        params.append(query.limit + 1)
        async with self._reader() as conn, conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        next_cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            next_cursor = Cursor(ts=last["ts"], rowid=last["rowid"]).encode()
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
        signal["shipped_at"] = row["shipped_at"]
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
            return [dict(row) for row in await cur.fetchall()]

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
        sql = ("SELECT CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER) / ?1 * ?1 AS start, "
               "severity, count(*) FROM signals WHERE ts >= ?2 AND ts < ?3 "
               "GROUP BY start, severity")
        volume: dict[int, dict[str, int]] = {}
        async with self._reader() as conn, conn.execute(
                sql, (bucket_seconds, since, until)) as cur:
            for start, severity, count in await cur.fetchall():
                volume.setdefault(start, {})[severity] = count
        return volume

    async def first_signal_ts(self) -> str | None:
        async with self._reader() as conn, conn.execute("SELECT min(ts) FROM signals") as cur:
            row = await cur.fetchone()
        return row[0] if row else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- write runners: each runs every queued op of its kind inside the writer's transaction ----

async def _insert_signals(conn: aiosqlite.Connection, batches: list[list[NewSignal]],
                          now: str) -> list[list[bool]]:
    ids = list(dict.fromkeys(s.signal_id for batch in batches for s in batch))
    seen = set(await _existing_ids(conn, ids))
    rows = []
    results = []
    for batch in batches:
        flags = []
        for s in batch:
            is_new = s.signal_id not in seen
            if is_new:
                seen.add(s.signal_id)
                rows.append((s.signal_id, s.ts, s.host_id, s.rule_id, s.severity, s.title,
                             s.tags_json, s.context_json, now, s.status, s.rule_description))
            flags.append(is_new)
        results.append(flags)
    if rows:
        await conn.executemany(
            "INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, "
            "context, received_at, status, rule_description) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return results


async def _existing_ids(conn: aiosqlite.Connection, ids: list[str]) -> list[str]:
    found: list[str] = []
    for chunk in _chunks(ids):
        async with conn.execute("SELECT signal_id FROM signals WHERE signal_id IN "
                                f"({_placeholders(len(chunk))})", chunk) as cur:
            found.extend(row[0] for row in await cur.fetchall())
    return found


async def _record_heartbeats(conn: aiosqlite.Connection, heartbeats: list[HeartbeatIn],
                             now: str) -> list[AgentReturn | None]:
    await conn.executemany(
        "INSERT OR IGNORE INTO heartbeats (agent_id, timestamp, version, os_version, "
        "uptime_seconds, received_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(hb.agent_id, hb.timestamp, hb.version, hb.os_version, hb.uptime_seconds, now)
         for hb in heartbeats])
    agent_ids = list(dict.fromkeys(hb.agent_id for hb in heartbeats))
    stale: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(agent_ids):
        async with conn.execute("SELECT agent_id, stale_since, last_seen FROM agents "
                                "WHERE status = 'stale' AND agent_id IN "
                                f"({_placeholders(len(chunk))})", chunk) as cur:
            stale.update((row[0], (row[1], row[2])) for row in await cur.fetchall())
    await conn.executemany(
        "INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, "
        "os_version, uptime_seconds, status, stale_since) "
        "VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, 'active', NULL) "
        "ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen, "
        "last_timestamp = excluded.last_timestamp, version = excluded.version, "
        "os_version = excluded.os_version, uptime_seconds = excluded.uptime_seconds, "
        "status = 'active', stale_since = NULL",
        [(hb.agent_id, now, hb.timestamp, hb.version, hb.os_version, hb.uptime_seconds)
         for hb in heartbeats])
    results: list[AgentReturn | None] = []
    for hb in heartbeats:
        if hb.agent_id not in stale:
            results.append(None)
            continue
        stale_since, last_seen = stale.pop(hb.agent_id)
        silent = (timeutil.parse_ns(now) - timeutil.parse_ns(last_seen)) / 1e9
        await _note_reconnection(conn, hb.agent_id, silent, now)
        results.append(AgentReturn(hb.agent_id, stale_since, silent))
    return results


async def _note_reconnection(conn: aiosqlite.Connection, agent_id: str, silent_seconds: float,
                             now: str) -> None:
    """The agent's unresolved stale alert keeps its status but records the reconnection:
    an analyst should still look at the gap."""
    async with conn.execute("SELECT signal_id, status FROM signals WHERE host_id = ? AND "
                            "rule_id = ? AND status != 'resolved' ORDER BY ts DESC LIMIT 1",
                            (agent_id, STALE_RULE_ID)) as cur:
        alert = await cur.fetchone()
    if alert is not None:
        minutes = round(silent_seconds / 60)
        await conn.execute(
            "INSERT INTO signal_history (signal_id, from_status, to_status, changed_at, note, "
            "actor) VALUES (?, ?, ?, ?, ?, ?)",
            (alert[0], alert[1], alert[1], now,
             f"reconnected after {minutes} minute{'' if minutes == 1 else 's'}", SYSTEM_ACTOR))


async def _set_status(conn: aiosqlite.Connection,
                      requests: list[tuple[list[str], str, str | None, str]],
                      now: str) -> list[StatusResult]:
    results = []
    for signal_ids, status, note, actor in requests:
        ids = list(dict.fromkeys(signal_ids))
        current: dict[str, str] = {}
        for chunk in _chunks(ids):
            async with conn.execute("SELECT signal_id, status FROM signals WHERE signal_id IN "
                                    f"({_placeholders(len(chunk))})", chunk) as cur:
                current.update((row[0], row[1]) for row in await cur.fetchall())
        changed = [sid for sid in ids if sid in current and current[sid] != status]
        await conn.executemany("UPDATE signals SET status = ? WHERE signal_id = ?",
                               [(status, sid) for sid in changed])
        # A note on an unchanged status is still worth keeping in the history.
        recorded = [sid for sid in ids if sid in current and (current[sid] != status or note)]
        await conn.executemany(
            "INSERT INTO signal_history (signal_id, from_status, to_status, changed_at, note, "
            "actor) VALUES (?, ?, ?, ?, ?, ?)",
            [(sid, current[sid], status, now, note, actor) for sid in recorded])
        results.append(StatusResult(updated=len(current),
                                    not_found=[sid for sid in ids if sid not in current]))
    return results


async def _touch(conn: aiosqlite.Connection, payloads: list[None], now: str) -> list[None]:
    await conn.execute("INSERT INTO meta (key, value) VALUES ('last_write_check', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (now,))
    return [None] * len(payloads)


def stale_alert_id(agent_id: str, last_seen: str) -> str:
    """One id per silence: the same silence can never raise a second alert."""
    digest = hashlib.sha256(f"{STALE_RULE_ID}\0{agent_id}\0{last_seen}".encode())
    return digest.hexdigest()[:32]


async def _mark_stale(conn: aiosqlite.Connection, checks: list[tuple[str, float]],
                      now: str) -> list[list[str]]:
    results = []
    for cutoff, threshold in checks:
        async with conn.execute(
                "SELECT agent_id, last_seen, last_timestamp, version, os_version, uptime_seconds "
                "FROM agents WHERE status = 'active' AND last_seen < ?", (cutoff,)) as cur:
            silent = await cur.fetchall()
        await conn.executemany("UPDATE agents SET status = 'stale', stale_since = ? "
                               "WHERE agent_id = ?", [(now, row[0]) for row in silent])
        alerts = []
        for agent_id, last_seen, last_timestamp, version, os_version, uptime in silent:
            minutes = round(threshold / 60, 1)
            context = {
                "kind": "agent_stale", "agent_id": agent_id, "last_seen": last_seen,
                "last_heartbeat_timestamp": last_timestamp, "version": version,
                "os_version": os_version, "uptime_seconds": uptime,
                "threshold_seconds": threshold, "stale_since": now,
            }
            alerts.append((
                stale_alert_id(agent_id, last_seen), now, agent_id, STALE_RULE_ID, "high",
                f"Agent {agent_id} stopped sending heartbeats",
                orjson.dumps(["agent-health", "tampering"]), orjson.dumps(context), now, "open",
                f"No heartbeat for more than {minutes:g} minutes. A silent agent means a "
                "failure, a network problem or tampering: check the Mac."))
        await conn.executemany(
            "INSERT OR IGNORE INTO signals (signal_id, ts, host_id, rule_id, severity, title, "
            "tags, context, received_at, status, rule_description) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", alerts)
        results.append([row[0] for row in silent])
    return results


async def _prune_heartbeats(conn: aiosqlite.Connection, requests: list[tuple[str, int]],
                            now: str) -> list[int]:
    results = []
    for cutoff, limit in requests:
        cur = await conn.execute(
            "DELETE FROM heartbeats WHERE rowid IN (SELECT h.rowid FROM heartbeats h "
            "WHERE h.received_at < ? AND h.rowid != (SELECT latest.rowid FROM heartbeats latest "
            "WHERE latest.agent_id = h.agent_id ORDER BY latest.received_at DESC, "
            "latest.rowid DESC LIMIT 1) LIMIT ?)",
            (cutoff, limit))
        results.append(cur.rowcount)
        await cur.close()
    return results


async def _prune_signals(conn: aiosqlite.Connection, requests: list[tuple[str, int]],
                         now: str) -> list[int]:
    results = []
    for cutoff, limit in requests:
        # The newest row is never pruned, so row ids only grow and the forwarder's position
        # (a row id) can never be overtaken by a reused one.
        async with conn.execute(
                "SELECT signal_id FROM signals WHERE status = 'resolved' AND ts < ? "
                "AND received_at < ? AND rowid < (SELECT max(rowid) FROM signals) LIMIT ?",
                (cutoff, cutoff, limit)) as cur:
            ids = [(row[0],) for row in await cur.fetchall()]
        for table in ("signal_history", "shipped", "signals"):
            await conn.executemany(f"DELETE FROM {table} WHERE signal_id = ?", ids)
        results.append(len(ids))
    return results


async def _compact(conn: aiosqlite.Connection, payloads: list[None], now: str) -> list[None]:
    await pragma(conn, "wal_checkpoint(TRUNCATE)")
    await pragma(conn, "analysis_limit = 1000")
    await conn.execute("ANALYZE")
    await pragma(conn, "optimize")
    return [None] * len(payloads)


async def _mark_shipped(conn: aiosqlite.Connection, requests: list[tuple[list[str], int]],
                        now: str) -> list[None]:
    for signal_ids, position in requests:
        await conn.executemany("INSERT OR IGNORE INTO shipped (signal_id, shipped_at) "
                               "VALUES (?, ?)", [(sid, now) for sid in signal_ids])
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (FORWARD_POSITION_KEY, str(position)))
    return [None] * len(requests)
