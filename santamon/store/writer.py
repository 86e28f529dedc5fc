"""The one writer: a thread of its own that commits whatever has queued up.

Every write is an operation put on a queue. The writer thread takes all that has queued,
runs it as one transaction (merging signal inserts and heartbeats into one `executemany`
each), commits, and only then answers each caller on the event loop. Many concurrent ingests
share one commit and one fsync, a caller never hears "stored" before its row is durable, and
the thread never waits for the event loop between commits (datasette's model).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .. import timeutil
from ..models import HeartbeatIn
from .base import AgentReturn, NewSignal, StatusResult, StoreUnavailable

log = logging.getLogger(__name__)

MAX_OPS_PER_COMMIT = 2000
SQL_PARAMS_PER_QUERY = 500  # well under SQLite's host-parameter limit
INSERT_ROWS_PER_STATEMENT = 500  # 5,500 parameters; SQLite allows 32,766
SIGNAL_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
STALE_RULE_ID = "AGENT-STALE"
SYSTEM_ACTOR = "system"
FORWARD_POSITION_KEY = "forward_position"

Runner = Callable[[sqlite3.Connection, list[Any], str], list[Any]]
CommitObserver = Callable[[int, float], None]  # (operations in the commit, seconds it took)


@dataclass(slots=True)
class WriteOp:
    run: Runner  # runs every queued op that shares this runner, in one go
    payload: Any
    future: asyncio.Future[Any]
    in_transaction: bool = True  # False: runs alone after the batch's commit (checkpoints)


_STOP = object()


def chunks(items: list[Any], size: int = SQL_PARAMS_PER_QUERY) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


class Writer:
    def __init__(
        self,
        path: Path,
        pragmas: list[str],
        loop: asyncio.AbstractEventLoop,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self._path, self._pragmas, self._loop = path, pragmas, loop
        self._on_commit = on_commit
        self._ops: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="santamon-writer", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failed is not None:
            raise self._failed

    def submit(self, op: WriteOp) -> None:
        self._ops.put(op)

    async def stop(self) -> None:
        """Commit everything queued so far, then close the connection."""
        self._ops.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            # The connection begins a transaction (BEGIN IMMEDIATE) by itself at the first
            # write; reads before it see the same data, since this is the only writer.
            conn = sqlite3.connect(self._path, isolation_level="IMMEDIATE")
            for setting in self._pragmas:
                conn.execute(f"PRAGMA {setting}").fetchall()
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        with closing(conn):
            stopping = False
            while not stopping:
                first = self._ops.get()
                if first is _STOP:
                    break
                batch = [first]
                while len(batch) < MAX_OPS_PER_COMMIT:
                    try:
                        op = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if op is _STOP:
                        stopping = True
                        break
                    batch.append(op)
                try:
                    self._commit(conn, batch)
                except Exception as exc:  # a bug here must not leave callers waiting forever
                    log.exception("writer failed on a batch of %d operation(s)", len(batch))
                    error = StoreUnavailable(f"writer error: {exc}")
                    self._answer([(op, None, error) for op in batch], 0, 0.0)

    def _commit(self, conn: sqlite3.Connection, batch: list[WriteOp]) -> None:
        started = time.perf_counter()
        inside = [op for op in batch if op.in_transaction]
        outside = [op for op in batch if not op.in_transaction]
        outcomes: list[tuple[WriteOp, Any, BaseException | None]] = []
        committed = 0
        if len(inside) > 1:
            try:
                results = self._transaction(conn, inside)
            except Exception:
                # One bad operation must not fail the others: retry each on its own.
                for op in inside:
                    self._commit(conn, [op])
            else:
                outcomes += zip(inside, results, [None] * len(inside), strict=True)
                committed = len(inside)
        elif inside:
            try:
                (result,) = self._transaction(conn, inside)
                outcomes.append((inside[0], result, None))
                committed = 1
            except Exception as exc:  # the caller must hear about it
                outcomes.append((inside[0], None, self._unavailable(exc)))
        for op in outside:
            try:
                (result,) = op.run(conn, [op.payload], timeutil.utc_now())
                outcomes.append((op, result, None))
            except Exception as exc:
                outcomes.append((op, None, self._unavailable(exc)))
        if outcomes:
            self._answer(outcomes, committed, time.perf_counter() - started)

    def _answer(
        self,
        outcomes: list[tuple[WriteOp, Any, BaseException | None]],
        committed: int,
        elapsed: float,
    ) -> None:
        try:
            self._loop.call_soon_threadsafe(self._settle, outcomes, committed, elapsed)
        except RuntimeError:  # the loop is gone: nobody is waiting for these answers
            log.warning("event loop closed; %d write result(s) undelivered", len(outcomes))

    @staticmethod
    def _unavailable(exc: Exception) -> Exception:
        if isinstance(exc, sqlite3.Error):
            log.error("write failed: %s", exc)
            return StoreUnavailable(str(exc))
        return exc

    @staticmethod
    def _transaction(conn: sqlite3.Connection, batch: list[WriteOp]) -> list[Any]:
        now = timeutil.utc_now()
        groups: dict[Runner, list[WriteOp]] = {}
        for op in batch:
            groups.setdefault(op.run, []).append(op)
        results: dict[int, Any] = {}
        try:
            for run, ops in groups.items():
                outcome = run(conn, [op.payload for op in ops], now)
                results.update(zip(map(id, ops), outcome, strict=True))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return [results[id(op)] for op in batch]

    # -- back on the event loop ---------------------------------------------------------------

    def _settle(
        self,
        outcomes: list[tuple[WriteOp, Any, BaseException | None]],
        committed: int,
        elapsed: float,
    ) -> None:
        if committed and self._on_commit is not None:
            self._on_commit(committed, elapsed)
        for op, result, error in outcomes:
            if op.future.done():  # the caller gave up waiting; the write stands
                continue
            if error is None:
                op.future.set_result(result)
            else:
                op.future.set_exception(error)


# -- runners: each runs every queued op of its kind inside the writer's transaction ---------


def insert_signals(
    conn: sqlite3.Connection, batches: list[list[NewSignal]], now: str
) -> list[list[bool]]:
    rows = []
    first: dict[str, bool] = {}  # within this commit, only an id's first occurrence is written
    for batch in batches:
        for s in batch:
            if s.signal_id not in first:
                first[s.signal_id] = True
                rows.append(
                    (
                        s.signal_id,
                        s.ts,
                        s.host_id,
                        s.rule_id,
                        s.severity,
                        s.title,
                        s.tags_json,
                        s.context_json,
                        now,
                        s.status,
                        s.rule_description,
                    )
                )
    inserted = 0
    # One multi-row statement per chunk, not executemany: the thread then gives up and
    # re-takes the GIL once per chunk instead of once per row, which under load is what
    # commits wait for.
    for chunk in chunks(rows, INSERT_ROWS_PER_STATEMENT):
        inserted += conn.execute(
            "INSERT OR IGNORE INTO signals (signal_id, ts, host_id, rule_id, severity, title, "
            "tags, context, received_at, status, rule_description) VALUES "
            + ",".join([SIGNAL_VALUES] * len(chunk)),
            [value for row in chunk for value in row],
        ).rowcount
    if inserted != len(rows):
        # Some ids existed before: they are the ones not received in this commit.
        for signal_id in _ids_received_before(conn, list(first), now):
            first[signal_id] = False
    results = []
    for batch in batches:
        flags = []
        for s in batch:
            flags.append(first[s.signal_id])
            first[s.signal_id] = False  # a repeat within the commit is a duplicate
        results.append(flags)
    return results


def _ids_received_before(conn: sqlite3.Connection, ids: list[str], now: str) -> list[str]:
    found: list[str] = []
    for chunk in chunks(ids):
        with closing(
            conn.execute(
                "SELECT signal_id FROM signals WHERE received_at != ? AND "
                f"signal_id IN ({placeholders(len(chunk))})",
                (now, *chunk),
            )
        ) as cur:
            found.extend(row[0] for row in cur.fetchall())
    return found


def record_heartbeats(
    conn: sqlite3.Connection, heartbeats: list[HeartbeatIn], now: str
) -> list[AgentReturn | None]:
    conn.executemany(
        "INSERT OR IGNORE INTO heartbeats (agent_id, timestamp, version, os_version, "
        "uptime_seconds, received_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (hb.agent_id, hb.timestamp, hb.version, hb.os_version, hb.uptime_seconds, now)
            for hb in heartbeats
        ],
    )
    agent_ids = list(dict.fromkeys(hb.agent_id for hb in heartbeats))
    stale: dict[str, tuple[str, str]] = {}
    for chunk in chunks(agent_ids):
        with closing(
            conn.execute(
                "SELECT agent_id, stale_since, last_seen FROM agents "
                "WHERE status = 'stale' AND agent_id IN "
                f"({placeholders(len(chunk))})",
                chunk,
            )
        ) as cur:
            stale.update((row[0], (row[1], row[2])) for row in cur.fetchall())
    conn.executemany(
        "INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, "
        "os_version, uptime_seconds, status, stale_since) "
        "VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, 'active', NULL) "
        "ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen, "
        "last_timestamp = excluded.last_timestamp, version = excluded.version, "
        "os_version = excluded.os_version, uptime_seconds = excluded.uptime_seconds, "
        "status = 'active', stale_since = NULL",
        [
            (hb.agent_id, now, hb.timestamp, hb.version, hb.os_version, hb.uptime_seconds)
            for hb in heartbeats
        ],
    )
    results: list[AgentReturn | None] = []
    for hb in heartbeats:
        if hb.agent_id not in stale:
            results.append(None)
            continue
        stale_since, last_seen = stale.pop(hb.agent_id)
        silent = (timeutil.parse_ns(now) - timeutil.parse_ns(last_seen)) / 1e9
        _note_reconnection(conn, hb.agent_id, silent, now)
        results.append(AgentReturn(hb.agent_id, stale_since, silent))
    return results


def _note_reconnection(
    conn: sqlite3.Connection, agent_id: str, silent_seconds: float, now: str
) -> None:
    """The agent's unresolved stale alert keeps its status but records the reconnection:
    an analyst should still look at the gap."""
    with closing(
        conn.execute(
            "SELECT signal_id, status FROM signals WHERE host_id = ? AND "
            "rule_id = ? AND status != 'resolved' ORDER BY ts DESC LIMIT 1",
            (agent_id, STALE_RULE_ID),
        )
    ) as cur:
        alert = cur.fetchone()
    if alert is not None:
        minutes = round(silent_seconds / 60)
        conn.execute(
            "INSERT INTO signal_history (signal_id, from_status, to_status, changed_at, note, "
            "actor) VALUES (?, ?, ?, ?, ?, ?)",
            (
                alert[0],
                alert[1],
                alert[1],
                now,
                f"reconnected after {minutes} minute{'' if minutes == 1 else 's'}",
                SYSTEM_ACTOR,
            ),
        )


def set_status(
    conn: sqlite3.Connection, requests: list[tuple[list[str], str, str | None, str]], now: str
) -> list[StatusResult]:
    results = []
    for signal_ids, status, note, actor in requests:
        ids = list(dict.fromkeys(signal_ids))
        current: dict[str, str] = {}
        for chunk in chunks(ids):
            with closing(
                conn.execute(
                    "SELECT signal_id, status FROM signals WHERE signal_id IN "
                    f"({placeholders(len(chunk))})",
                    chunk,
                )
            ) as cur:
                current.update((row[0], row[1]) for row in cur.fetchall())
        changed = [sid for sid in ids if sid in current and current[sid] != status]
        conn.executemany(
            "UPDATE signals SET status = ? WHERE signal_id = ?", [(status, sid) for sid in changed]
        )
        # A note on an unchanged status is still worth keeping in the history.
        recorded = [sid for sid in ids if sid in current and (current[sid] != status or note)]
        conn.executemany(
            "INSERT INTO signal_history (signal_id, from_status, to_status, changed_at, note, "
            "actor) VALUES (?, ?, ?, ?, ?, ?)",
            [(sid, current[sid], status, now, note, actor) for sid in recorded],
        )
        results.append(
            StatusResult(updated=len(current), not_found=[sid for sid in ids if sid not in current])
        )
    return results


def touch(conn: sqlite3.Connection, payloads: list[None], now: str) -> list[None]:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('last_write_check', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (now,),
    )
    return [None] * len(payloads)


def stale_alert_id(agent_id: str, last_seen: str) -> str:
    """One id per silence: the same silence can never raise a second alert."""
    digest = hashlib.sha256(f"{STALE_RULE_ID}\0{agent_id}\0{last_seen}".encode())
    return digest.hexdigest()[:32]


def mark_stale(
    conn: sqlite3.Connection, checks: list[tuple[str, float]], now: str
) -> list[list[str]]:
    results = []
    for cutoff, threshold in checks:
        with closing(
            conn.execute(
                "SELECT agent_id, last_seen, last_timestamp, version, os_version, uptime_seconds "
                "FROM agents WHERE status = 'active' AND last_seen < ?",
                (cutoff,),
            )
        ) as cur:
            silent = cur.fetchall()
        conn.executemany(
            "UPDATE agents SET status = 'stale', stale_since = ? WHERE agent_id = ?",
            [(now, row[0]) for row in silent],
        )
        alerts = []
        for agent_id, last_seen, last_timestamp, version, os_version, uptime in silent:
            minutes = round(threshold / 60, 1)
            context = {
                "kind": "agent_stale",
                "agent_id": agent_id,
                "last_seen": last_seen,
                "last_heartbeat_timestamp": last_timestamp,
                "version": version,
                "os_version": os_version,
                "uptime_seconds": uptime,
                "threshold_seconds": threshold,
                "stale_since": now,
            }
            alerts.append(
                (
                    stale_alert_id(agent_id, last_seen),
                    now,
                    agent_id,
                    STALE_RULE_ID,
                    "high",
                    f"Agent {agent_id} stopped sending heartbeats",
                    orjson.dumps(["agent-health", "tampering"]),
                    orjson.dumps(context),
                    now,
                    "open",
                    f"No heartbeat for more than {minutes:g} minutes. A silent agent means a "
                    "failure, a network problem or tampering: check the Mac.",
                )
            )
        conn.executemany(
            "INSERT OR IGNORE INTO signals (signal_id, ts, host_id, rule_id, severity, title, "
            "tags, context, received_at, status, rule_description) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            alerts,
        )
        results.append([row[0] for row in silent])
    return results


def prune_heartbeats(
    conn: sqlite3.Connection, requests: list[tuple[str, int]], now: str
) -> list[int]:
    results = []
    for cutoff, limit in requests:
        cur = conn.execute(
            "DELETE FROM heartbeats WHERE rowid IN (SELECT h.rowid FROM heartbeats h "
            "WHERE h.received_at < ? AND h.rowid != (SELECT latest.rowid FROM heartbeats latest "
            "WHERE latest.agent_id = h.agent_id ORDER BY latest.received_at DESC, "
            "latest.rowid DESC LIMIT 1) LIMIT ?)",
            (cutoff, limit),
        )
        results.append(cur.rowcount)
        cur.close()
    return results


def prune_signals(conn: sqlite3.Connection, requests: list[tuple[str, int]], now: str) -> list[int]:
    results = []
    for cutoff, limit in requests:
        # The newest row is never pruned, so row ids only grow and the forwarder's position
        # (a row id) can never be overtaken by a reused one.
        with closing(
            conn.execute(
                "SELECT signal_id FROM signals WHERE status = 'resolved' AND ts < ? "
                "AND received_at < ? AND rowid < (SELECT max(rowid) FROM signals) LIMIT ?",
                (cutoff, cutoff, limit),
            )
        ) as cur:
            ids = [(row[0],) for row in cur.fetchall()]
        for table in ("signal_history", "shipped", "signals"):
            conn.executemany(f"DELETE FROM {table} WHERE signal_id = ?", ids)
        results.append(len(ids))
    return results


def compact(conn: sqlite3.Connection, payloads: list[None], now: str) -> list[None]:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.execute("PRAGMA optimize").fetchall()  # re-analyses tables that changed a lot
    return [None] * len(payloads)


def mark_shipped(
    conn: sqlite3.Connection, requests: list[tuple[list[str], int]], now: str
) -> list[None]:
    for signal_ids, position in requests:
        conn.executemany(
            "INSERT OR IGNORE INTO shipped (signal_id, shipped_at) VALUES (?, ?)",
            [(sid, now) for sid in signal_ids],
        )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (FORWARD_POSITION_KEY, str(position)),
        )
    return [None] * len(requests)
