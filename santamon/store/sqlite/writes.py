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
from ...domain.heartbeats import LastBeat
from ...domain.signals import NEW_STATUS, SYSTEM_ACTOR, NewSignal
from ...domain.silences import Matchers, NewSilence, Silence
from ..base import (
    AgentKey,
    AlertBuilder,
    AnalystKey,
    ConnectionProblem,
    ConsoleSession,
    Heartbeat,
    HistoryRule,
    JobRun,
    KeyUse,
    NameTaken,
    NewAgentKey,
    NewAnalystKey,
    StatusResult,
    SummaryBuilder,
)
from ..common import (
    AGENT_KEY_COLUMNS,
    AGENT_UPSERT,
    ANALYST_KEY_COLUMNS,
    FORWARD_POSITION_KEY,
    JOB_KEY_PREFIX,
    KEYS_VERSION_KEY,
    SILENCE_COLUMNS,
    SILENCES_VERSION_KEY,
    agent_key,
    analyst_key,
    first_occurrences,
    heartbeat_writes,
    job_record_value,
    last_beat,
    last_beats_sql,
    probe_signal,
    resolution_note,
    shortened_column,
    silence_row,
    stale_alerts,
    stored_flags,
)

SQL_PARAMS_PER_QUERY = 500  # well under SQLite's host-parameter limit
INSERT_ROWS_PER_STATEMENT = 500  # 7,000 parameters; SQLite allows 32,766
SIGNAL_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_SIGNALS = ("INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, "
                  "tags, context, received_at, status, rule_description, silence_id, "
                  "shortened, original_context_bytes) VALUES ")
PROBLEM_VALUES = "(?, ?, ?, ?, ?, ?)"


def chunks(items: list[Any], size: int = SQL_PARAMS_PER_QUERY) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def _signal_row(s: NewSignal, now: str) -> tuple[Any, ...]:
    return (s.signal_id, s.ts, s.host_id, s.rule_id, s.severity, s.title, s.tags_json,
            s.context_json, now, NEW_STATUS, s.rule_description, s.silence_id,
            shortened_column(s), s.original_context_bytes)


def open_matching_query(matchers: Matchers) -> tuple[str, list[Any]]:
    """Open signals that may match: every matcher but a title glob is checked here, through
    the narrowest index; `Matchers.title_matches` decides the rest."""
    where, params = ["status = 'open'"], []
    for column in ("rule_id", "host_id", "severity"):
        if (value := getattr(matchers, column)) is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if matchers.title is not None and not matchers.title_is_glob:
        where.append("title = ?")
        params.append(matchers.title)
    if matchers.rule_id and matchers.host_id:
        index = "idx_signals_group"
    elif matchers.host_id:
        index = "idx_signals_host_ts"
    elif matchers.rule_id:
        index = "idx_signals_rule_ts"
    else:
        index = "idx_signals_status_ts"
    return (f"SELECT signal_id, title FROM signals INDEXED BY {index} WHERE "
            + " AND ".join(where)), params


def _bump_silences_version(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE "
                 "SET value = CAST(value AS INTEGER) + 1", (SILENCES_VERSION_KEY,))


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
        calls = [op.signals for op in ops]
        return stored_flags(calls, insert_new_signals(conn, first_occurrences(calls), now))


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
        stored = last_beats(conn, list(dict.fromkeys(beat.agent_id for beat in self.beats)))
        writes = heartbeat_writes(self.beats, stored, self.history)
        conn.executemany(
            "INSERT OR IGNORE INTO heartbeats (agent_id, timestamp, version, os_version, "
            "uptime_seconds, received_at, reasons) VALUES (?, ?, ?, ?, ?, ?, ?)", writes.kept)
        conn.executemany(
            "INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, "
            "os_version, uptime_seconds, status, stale_since, auth) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, 'active', NULL, ?) {AGENT_UPSERT}",
            [(b.agent_id, first_seen, b.received_at, b.timestamp, b.version, b.os_version,
              b.uptime_seconds, b.auth) for b, first_seen in writes.latest])
        for agent_id, silent_since, heard in writes.reconnected:
            _note_reconnection(conn, agent_id, reconnection_note(silent_since, heard), heard)


def last_beats(conn: sqlite3.Connection, agent_ids: list[str]) -> dict[str, LastBeat]:
    """What is stored about these agents, for the heartbeats that follow."""
    found: dict[str, LastBeat] = {}
    for chunk in chunks(agent_ids):
        with closing(conn.execute(last_beats_sql(placeholders(len(chunk))), chunk)) as cur:
            found.update(last_beat(row) for row in cur.fetchall())
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
    only_changes: bool = False  # record no note on a signal already in `status`
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
        recorded = changed if self.only_changes else [
            sid for sid in ids if sid in current and (current[sid] != self.status or self.note)]
        _record_history(conn, [(sid, current[sid], self.status, now, self.note, self.actor)
                               for sid in recorded])
        return StatusResult(updated=len(current), changed=len(changed),
                            not_found=[sid for sid in ids if sid not in current])


@dataclass(slots=True)
class MarkStale:
    cutoff: str
    alert: AlertBuilder
    summary: SummaryBuilder | None
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[MarkStale],
              now: str) -> list[list[str]]:
        agent_columns = ("agent_id, last_seen, last_timestamp, version, os_version, "
                         "uptime_seconds")
        results = []
        for op in ops:
            with closing(conn.execute(
                    f"SELECT {agent_columns} FROM agents WHERE status = 'active' AND "
                    "last_seen < ?", (op.cutoff,))) as cur:
                silent = [SilentAgent(*row) for row in cur.fetchall()]
            with closing(conn.execute(f"SELECT {agent_columns} FROM agents WHERE status = "
                                      "'stale' AND alert_held = 1")) as cur:
                held = [SilentAgent(*row) for row in cur.fetchall()]
            outcome = stale_alerts(silent, held, now, op.alert, op.summary)
            conn.executemany(
                "UPDATE agents SET status = 'stale', stale_since = ?, alert_held = ? "
                "WHERE agent_id = ?",
                [(now, agent.agent_id in outcome.held, agent.agent_id) for agent in silent])
            conn.executemany("UPDATE agents SET alert_held = 0 WHERE agent_id = ?",
                             [(agent_id,) for agent_id in outcome.raised])
            insert_new_signals(conn, outcome.alerts, now)
            results.append(outcome.reported)
        return results


@dataclass(slots=True)
class CreateSilence:
    silence: NewSilence
    resolve_matching: bool
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[CreateSilence],
              now: str) -> list[tuple[Silence, int]]:
        results = []
        for op in ops:
            new, matchers = op.silence, op.silence.matchers
            with closing(conn.execute(
                    "INSERT INTO silences (rule_id, host_id, severity, title, comment, "
                    "created_by, created_at, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING id", (matchers.rule_id, matchers.host_id, matchers.severity,
                                     matchers.title, new.comment, new.created_by, now,
                                     new.ends_at))) as cur:
                (silence_id,) = cur.fetchone()
            resolved = 0
            if op.resolve_matching:
                sql, params = open_matching_query(matchers)
                with closing(conn.execute(sql, params)) as cur:
                    ids = [sid for sid, title in cur.fetchall()
                           if matchers.title_matches(title)]
                resolved = SetStatus(ids, "resolved", resolution_note(silence_id, new.comment),
                                     new.created_by, only_changes=True)._apply(conn, now).changed
            _bump_silences_version(conn)
            results.append((Silence(silence_id, matchers, new.comment, new.created_by, now,
                                    new.ends_at), resolved))
        return results


@dataclass(slots=True)
class ExpireSilence:
    silence_id: int
    actor: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[ExpireSilence],
              now: str) -> list[Silence | None]:
        results = []
        for op in ops:
            with closing(conn.execute(
                    "UPDATE silences SET expired_at = ?, expired_by = ? WHERE id = ? AND "
                    "expired_at IS NULL AND ends_at > ?",
                    (now, op.actor, op.silence_id, now))) as cur:
                if cur.rowcount:
                    _bump_silences_version(conn)
            with closing(conn.execute(f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = ?",
                                      (op.silence_id,))) as cur:
                row = cur.fetchone()
            results.append(silence_row(row) if row else None)
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
class RecordJobRun:
    run: JobRun
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RecordJobRun], now: str) -> list[None]:
        for op in ops:
            key = JOB_KEY_PREFIX + op.run.job_id
            with closing(conn.execute("SELECT value FROM meta WHERE key = ?", (key,))) as cur:
                row = cur.fetchone()
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                         "UPDATE SET value = excluded.value",
                         (key, job_record_value(row[0] if row else None, op.run)))
        return [None] * len(ops)


@dataclass(slots=True)
class ProbeWrite:
    """What /health commits: a signal inserted and deleted again in one transaction. Nobody
    ever sees it, but it dirties the same table, index and counter pages a real signal does,
    so it needs as much room in the log: a full disk fails it as it fails ingest."""

    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[ProbeWrite], now: str) -> list[None]:
        with closing(conn.execute(
                INSERT_SIGNALS + SIGNAL_VALUES + " ON CONFLICT (signal_id) DO NOTHING "
                "RETURNING seq", _signal_row(probe_signal(now), now))) as cur:
            inserted = cur.fetchall()
        conn.executemany("DELETE FROM signals WHERE seq = ?", inserted)
        return [None] * len(ops)


@dataclass(slots=True)
class AddConnectionProblems:
    problems: list[ConnectionProblem]
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[AddConnectionProblems],
              now: str) -> list[None]:
        rows = [(p.hour, p.client, p.kind, p.count, p.last_seen, p.detail)
                for op in ops for p in op.problems]
        for chunk in chunks(rows, INSERT_ROWS_PER_STATEMENT):
            # Every SET expression reads the row as it was: the detail goes with the later
            # last_seen.
            conn.execute(
                "INSERT INTO connection_problems (hour, client, kind, count, last_seen, detail) "
                "VALUES " + ",".join([PROBLEM_VALUES] * len(chunk)) + " "
                "ON CONFLICT (hour, client, kind) DO UPDATE SET count = count + excluded.count, "
                "detail = CASE WHEN excluded.last_seen >= last_seen THEN excluded.detail "
                "ELSE detail END, last_seen = max(last_seen, excluded.last_seen)",
                [value for row in chunk for value in row]).close()
        return [None] * len(ops)


@dataclass(slots=True)
class PruneConnectionProblems:
    cutoff: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[PruneConnectionProblems],
              now: str) -> list[int]:
        results = []
        for op in ops:
            with closing(conn.execute("DELETE FROM connection_problems WHERE hour < ?",
                                      (op.cutoff,))) as cur:
                results.append(cur.rowcount)
        return results


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
            conn.execute("INSERT INTO sessions (token_hash, actor, created_at, expires_at, "
                         "role, key_id) VALUES (?, ?, ?, ?, ?, ?)",
                         (s.token_hash, s.actor, s.created_at, s.expires_at, s.role, s.key_id))
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


# -- keys -------------------------------------------------------------------------------------

def _keys_changed(conn: sqlite3.Connection) -> None:
    """Move the version other instances poll (common.KEYS_VERSION_KEY)."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE "
                 "SET value = CAST(value AS INTEGER) + 1", (KEYS_VERSION_KEY,))


def _agent_key(conn: sqlite3.Connection, key_id: str) -> AgentKey | None:
    with closing(conn.execute(f"SELECT {AGENT_KEY_COLUMNS} FROM agent_keys WHERE key_id = ?",
                              (key_id,))) as cur:
        row = cur.fetchone()
    return agent_key(row) if row else None


def _insert_agent_key(conn: sqlite3.Connection, key: NewAgentKey, host_id: str, now: str,
                      replaces: str | None = None) -> AgentKey:
    conn.execute("INSERT INTO agent_keys (key_id, key_hash, host_id, created_at, created_by, "
                 "replaces) VALUES (?, ?, ?, ?, ?, ?)",
                 (key.key_id, key.key_hash, host_id, now, key.created_by, replaces))
    return AgentKey(key.key_id, key.key_hash, host_id, now, key.created_by, replaces=replaces)


@dataclass(slots=True)
class CreateAgentKeys:
    keys: list[NewAgentKey]
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[CreateAgentKeys],
              now: str) -> list[list[AgentKey]]:
        results = [[_insert_agent_key(conn, key, key.host_id, now) for key in op.keys]
                   for op in ops]
        _keys_changed(conn)
        return results


@dataclass(slots=True)
class RotateAgentKey:
    key_id: str
    new: NewAgentKey
    old_valid_until: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RotateAgentKey],
              now: str) -> list[AgentKey | None]:
        results = []
        for op in ops:
            old = _agent_key(conn, op.key_id)
            if old is None or old.revoked_at or (old.expires_at and old.expires_at <= now):
                results.append(None)
                continue
            until = min(op.old_valid_until, old.expires_at or op.old_valid_until)
            conn.execute("UPDATE agent_keys SET expires_at = ? WHERE key_id = ?",
                         (until, op.key_id))
            results.append(_insert_agent_key(conn, op.new, old.host_id, now, op.key_id))
            _keys_changed(conn)
        return results


@dataclass(slots=True)
class RevokeAgentKey:
    key_id: str
    actor: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RevokeAgentKey],
              now: str) -> list[AgentKey | None]:
        results = []
        for op in ops:
            with closing(conn.execute(
                    "UPDATE agent_keys SET revoked_at = ?, revoked_by = ? "
                    "WHERE key_id = ? AND revoked_at IS NULL", (now, op.actor, op.key_id))) as cur:
                if cur.rowcount:
                    _keys_changed(conn)
            results.append(_agent_key(conn, op.key_id))
        return results


@dataclass(slots=True)
class RecordKeyUse:
    uses: list[KeyUse]
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RecordKeyUse], now: str) -> list[None]:
        conn.executemany(
            "UPDATE agent_keys SET last_used_at = ?1, last_used_from = ?2 "
            "WHERE key_id = ?3 AND (last_used_at IS NULL OR last_used_at < ?1)",
            [(use.at, use.address, use.key_id) for op in ops for use in op.uses])
        return [None] * len(ops)


def _analyst_key(conn: sqlite3.Connection, key_id: str) -> AnalystKey | None:
    with closing(conn.execute(
            f"SELECT {ANALYST_KEY_COLUMNS} FROM analyst_keys WHERE key_id = ?",
            (key_id,))) as cur:
        row = cur.fetchone()
    return analyst_key(row) if row else None


@dataclass(slots=True)
class CreateAnalystKey:
    key: NewAnalystKey
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[CreateAnalystKey],
              now: str) -> list[AnalystKey | NameTaken]:
        results: list[AnalystKey | NameTaken] = []
        for op in ops:
            key = op.key
            with closing(conn.execute("SELECT 1 FROM analyst_keys WHERE name = ? AND "
                                      "revoked_at IS NULL", (key.name,))) as cur:
                if cur.fetchone():
                    results.append(NameTaken(f"{key.name} already has a key; revoke it first"))
                    continue
            conn.execute("INSERT INTO analyst_keys (key_id, key_hash, name, role, created_at, "
                         "created_by) VALUES (?, ?, ?, ?, ?, ?)",
                         (key.key_id, key.key_hash, key.name, key.role, now, key.created_by))
            _keys_changed(conn)
            results.append(AnalystKey(key.key_id, key.key_hash, key.name, key.role, now,
                                      key.created_by))
        return results


@dataclass(slots=True)
class RevokeAnalystKey:
    key_id: str
    actor: str
    outside_transaction: ClassVar[bool] = False

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[RevokeAnalystKey],
              now: str) -> list[AnalystKey | None]:
        results = []
        for op in ops:
            with closing(conn.execute(
                    "UPDATE analyst_keys SET revoked_at = ?, revoked_by = ? "
                    "WHERE key_id = ? AND revoked_at IS NULL", (now, op.actor, op.key_id))) as cur:
                if cur.rowcount:
                    _keys_changed(conn)
            conn.execute("DELETE FROM sessions WHERE key_id = ?", (op.key_id,))
            results.append(_analyst_key(conn, op.key_id))
        return results
