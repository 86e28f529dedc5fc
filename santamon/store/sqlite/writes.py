"""Every write of the SQLite store, as operations the writer thread applies in its transaction.

Each operation class applies all of its queued instances at once, so a burst of ingests
becomes one statement; results come back in the order the operations were queued.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from typing import Any, ClassVar

from ...domain.agents import STALE_RULE_ID, SilentAgent, reconnection_note
from ...domain.heartbeats import LAST, RETURN, LastBeat, encode_reasons
from ...domain.signals import NEW_STATUS, SYSTEM_ACTOR, NewSignal
from ..base import AlertBuilder, ConsoleSession, Heartbeat, HistoryRule, StatusResult

SQL_PARAMS_PER_QUERY = 500  # well under SQLite's host-parameter limit
INSERT_ROWS_PER_STATEMENT = 500  # 5,500 parameters; SQLite allows 32,766
SIGNAL_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_SIGNALS = ("INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, "
                  "tags, context, received_at, status, rule_description) VALUES ")
FORWARD_POSITION_KEY = "forward_position"


def chunks(items: list[Any], size: int = SQL_PARAMS_PER_QUERY) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def _signal_row(s: NewSignal, now: str) -> tuple[Any, ...]:
    return (s.signal_id, s.ts, s.host_id, s.rule_id, s.severity, s.title, s.tags_json,
            s.context_json, now, NEW_STATUS, s.rule_description)


def insert_new_signals(conn: sqlite3.Connection, signals: list[NewSignal], now: str) -> set[str]:
    """Insert the signals whose id is not stored yet; returns the ids inserted."""
    inserted: set[str] = set()
    # One multi-row statement per chunk, not executemany: the thread then gives up and
    # re-takes the GIL once per chunk instead of once per row, which under load is what
    # commits wait for.
    for chunk in chunks(signals, INSERT_ROWS_PER_STATEMENT):
        with closing(conn.execute(
                INSERT_SIGNALS + ",".join([SIGNAL_VALUES] * len(chunk))
                + " ON CONFLICT (signal_id) DO NOTHING RETURNING signal_id",
                [value for s in chunk for value in _signal_row(s, now)])) as cur:
            inserted.update(row[0] for row in cur.fetchall())
    return inserted


@dataclass(slots=True)
class InsertSignals:
    signals: list[NewSignal]
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[InsertSignals],
              now: str) -> list[list[bool]]:
        unique: dict[str, NewSignal] = {}  # within a commit, an id's first occurrence wins
        for op in ops:
            for s in op.signals:
                unique.setdefault(s.signal_id, s)
        stored = insert_new_signals(conn, list(unique.values()), now)
        results = []
        for op in ops:
            flags = []
            for s in op.signals:
                flags.append(s.signal_id in stored)
                stored.discard(s.signal_id)  # a repeat within the commit is a duplicate
            results.append(flags)
        return results


@dataclass(slots=True)
class RecordHeartbeats:
    beats: list[Heartbeat]
    history: HistoryRule
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RecordHeartbeats],
              now: str) -> list[None]:
        for op in ops:
            op._apply(conn)
        return [None] * len(ops)

    def _apply(self, conn: sqlite3.Connection) -> None:
        beats = sorted(self.beats, key=lambda beat: beat.received_at)
        last = last_beats(conn, list(dict.fromkeys(beat.agent_id for beat in beats)))
        kept: list[tuple[Any, ...]] = []
        latest: dict[str, Heartbeat] = {}
        first_seen: dict[str, str] = {}  # agents new to the store
        reconnected: list[tuple[str, str, str]] = []  # (agent, silent since, heard again)
        for beat in beats:
            previous = last.get(beat.agent_id)
            if previous is not None and beat.received_at <= previous.received_at:
                continue  # a newer one is stored already (another server, a re-sent flush)
            reasons = self.history.reasons(previous, beat)
            if RETURN in reasons and previous is not None and previous.timestamp is not None:
                kept.append((beat.agent_id, previous.timestamp, previous.version,
                             previous.os_version, previous.uptime_seconds,
                             previous.received_at, LAST))
            if reasons:
                kept.append((beat.agent_id, beat.timestamp, beat.version, beat.os_version,
                             beat.uptime_seconds, beat.received_at, encode_reasons(reasons)))
            if previous is not None and previous.stale:
                reconnected.append((beat.agent_id, previous.received_at, beat.received_at))
            latest[beat.agent_id] = beat
            if previous is None:
                first_seen[beat.agent_id] = beat.received_at
            last[beat.agent_id] = LastBeat(
                beat.received_at, beat.timestamp, beat.version, beat.os_version,
                beat.uptime_seconds, stale=False,
                kept_at=beat.received_at if reasons or previous is None else previous.kept_at)
        conn.executemany(
            "INSERT OR IGNORE INTO heartbeats (agent_id, timestamp, version, os_version, "
            "uptime_seconds, received_at, reasons) VALUES (?, ?, ?, ?, ?, ?, ?)", kept)
        conn.executemany(
            "INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, "
            "os_version, uptime_seconds, status, stale_since) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', NULL) "
            "ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen, "
            "last_timestamp = excluded.last_timestamp, version = excluded.version, "
            "os_version = excluded.os_version, uptime_seconds = excluded.uptime_seconds, "
            "status = 'active', stale_since = NULL WHERE excluded.last_seen > agents.last_seen",
            [(b.agent_id, first_seen.get(b.agent_id, b.received_at), b.received_at, b.timestamp,
              b.version, b.os_version, b.uptime_seconds) for b in latest.values()])
        for agent_id, silent_since, heard in reconnected:
            _note_reconnection(conn, agent_id, reconnection_note(silent_since, heard), heard)


def last_beats(conn: sqlite3.Connection, agent_ids: list[str]) -> dict[str, LastBeat]:
    """What is stored about these agents, for the heartbeats that follow."""
    found: dict[str, LastBeat] = {}
    for chunk in chunks(agent_ids):
        with closing(conn.execute(
                "SELECT agent_id, last_seen, last_timestamp, version, os_version, "
                "uptime_seconds, status = 'stale', (SELECT received_at FROM heartbeats h "
                "WHERE h.agent_id = agents.agent_id ORDER BY received_at DESC LIMIT 1) "
                f"FROM agents WHERE agent_id IN ({placeholders(len(chunk))})", chunk)) as cur:
            for agent_id, *row in cur.fetchall():
                found[agent_id] = LastBeat(*row[:5], stale=bool(row[5]), kept_at=row[6])
    return found


def _note_reconnection(conn: sqlite3.Connection, agent_id: str, note: str, now: str) -> None:
    """The agent's unresolved stale alert keeps its status but records the reconnection:
    an analyst should still look at the gap."""
    with closing(conn.execute(
            "SELECT signal_id, status FROM signals WHERE host_id = ? AND rule_id = ? AND "
            "status != 'resolved' ORDER BY ts DESC LIMIT 1", (agent_id, STALE_RULE_ID))) as cur:
        alert = cur.fetchone()
    if alert is not None:
        _record_history(conn, [(alert[0], alert[1], alert[1], now, note, SYSTEM_ACTOR)])


def _record_history(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO signal_history (signal_id, from_status, to_status, changed_at, note, "
        "actor) VALUES (?, ?, ?, ?, ?, ?)", rows)


@dataclass(slots=True)
class SetStatus:
    signal_ids: list[str]
    status: str
    note: str | None
    actor: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[SetStatus],
              now: str) -> list[StatusResult]:
        return [op._apply(conn, now) for op in ops]

    def _apply(self, conn: sqlite3.Connection, now: str) -> StatusResult:
        ids = list(dict.fromkeys(self.signal_ids))
        current: dict[str, str] = {}
        for chunk in chunks(ids):
            with closing(conn.execute(
                    "SELECT signal_id, status FROM signals WHERE signal_id IN "
                    f"({placeholders(len(chunk))})", chunk)) as cur:
                current.update(cur.fetchall())
        changed = [sid for sid in ids if sid in current and current[sid] != self.status]
        conn.executemany("UPDATE signals SET status = ? WHERE signal_id = ?",
                         [(self.status, sid) for sid in changed])
        # A note on an unchanged status is still worth keeping in the history.
        recorded = [sid for sid in ids
                    if sid in current and (current[sid] != self.status or self.note)]
        _record_history(conn, [(sid, current[sid], self.status, now, self.note, self.actor)
                               for sid in recorded])
        return StatusResult(updated=len(current),
                            not_found=[sid for sid in ids if sid not in current])


@dataclass(slots=True)
class MarkStale:
    cutoff: str
    alert: AlertBuilder
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[MarkStale],
              now: str) -> list[list[str]]:
        results = []
        for op in ops:
            with closing(conn.execute(
                    "SELECT agent_id, last_seen, last_timestamp, version, os_version, "
                    "uptime_seconds FROM agents WHERE status = 'active' AND last_seen < ?",
                    (op.cutoff,))) as cur:
                silent = [SilentAgent(*row) for row in cur.fetchall()]
            conn.executemany("UPDATE agents SET status = 'stale', stale_since = ? "
                             "WHERE agent_id = ?", [(now, agent.agent_id) for agent in silent])
            insert_new_signals(conn, [op.alert(agent, now) for agent in silent], now)
            results.append([agent.agent_id for agent in silent])
        return results


@dataclass(slots=True)
class PruneHeartbeats:
    cutoff: str
    limit: int
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[PruneHeartbeats],
              now: str) -> list[int]:
        results = []
        for op in ops:
            with closing(conn.execute(
                    "DELETE FROM heartbeats WHERE rowid IN (SELECT h.rowid FROM heartbeats h "
                    "WHERE h.received_at < ? AND h.rowid != (SELECT latest.rowid FROM "
                    "heartbeats latest WHERE latest.agent_id = h.agent_id ORDER BY "
                    "latest.received_at DESC, latest.rowid DESC LIMIT 1) LIMIT ?)",
                    (op.cutoff, op.limit))) as cur:
                results.append(cur.rowcount)
        return results


@dataclass(slots=True)
class PruneSignals:
    cutoff: str
    limit: int
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[PruneSignals], now: str) -> list[int]:
        results = []
        for op in ops:
            with closing(conn.execute(
                    "SELECT signal_id FROM signals WHERE status = 'resolved' AND ts < ? "
                    "AND received_at < ? LIMIT ?", (op.cutoff, op.cutoff, op.limit))) as cur:
                ids = cur.fetchall()
            for table in ("signal_history", "shipped", "signals"):
                conn.executemany(f"DELETE FROM {table} WHERE signal_id = ?", ids)
            results.append(len(ids))
        return results


@dataclass(slots=True)
class MarkShipped:
    signal_ids: list[str]
    position: int
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[MarkShipped], now: str) -> list[None]:
        for op in ops:
            conn.executemany("INSERT OR IGNORE INTO shipped (signal_id, shipped_at) "
                             "VALUES (?, ?)", [(sid, now) for sid in op.signal_ids])
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (FORWARD_POSITION_KEY, str(op.position)))
        return [None] * len(ops)


@dataclass(slots=True)
class ProbeWrite:
    """What /health commits: a signal inserted and deleted again in one transaction. Nobody
    ever sees it, but it dirties the same table, index and counter pages a real signal does,
    so it needs as much room in the log: a full disk fails it as it fails ingest."""

    context_json: bytes
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[ProbeWrite], now: str) -> list[None]:
        probe = NewSignal(signal_id=f"santamon-health-probe-{now}", ts=now,
                          host_id="santamon-health-probe", rule_id="SANTAMON-HEALTH",
                          severity="info", title="health probe", tags_json=b"[]",
                          context_json=ops[-1].context_json, rule_description=None)
        with closing(conn.execute(
                INSERT_SIGNALS + SIGNAL_VALUES + " ON CONFLICT (signal_id) DO NOTHING "
                "RETURNING seq", _signal_row(probe, now))) as cur:
            inserted = cur.fetchall()
        conn.executemany("DELETE FROM signals WHERE seq = ?", inserted)
        return [None] * len(ops)


@dataclass(slots=True)
class CreateSession:
    session: ConsoleSession
    keep: int
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[CreateSession],
              now: str) -> list[None]:
        for op in ops:
            s = op.session
            conn.execute("INSERT INTO sessions (token_hash, actor, created_at, expires_at) "
                         "VALUES (?, ?, ?, ?)", (s.token_hash, s.actor, s.created_at,
                                                 s.expires_at))
            conn.execute("DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM "
                         "sessions ORDER BY expires_at DESC LIMIT -1 OFFSET ?)", (op.keep,))
        return [None] * len(ops)


@dataclass(slots=True)
class DeleteSession:
    token_hash: bytes
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[DeleteSession],
              now: str) -> list[None]:
        conn.executemany("DELETE FROM sessions WHERE token_hash = ?",
                         [(op.token_hash,) for op in ops])
        return [None] * len(ops)


@dataclass(slots=True)
class PruneSessions:
    now: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[PruneSessions], now: str) -> list[int]:
        results = []
        for op in ops:
            with closing(conn.execute("DELETE FROM sessions WHERE expires_at <= ?",
                                      (op.now,))) as cur:
                results.append(cur.rowcount)
        return results
