"""What every engine does the same way, whatever its SQL: how a row becomes a signal, cursors,
search terms, the /stats document, results of grouped inserts, what a flush of heartbeats
writes, and the health probe."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .. import timeutil
from ..domain.agents import SilentAgent
from ..domain.heartbeats import LAST, RETURN, KeptBeat, LastBeat, decode_reasons, encode_reasons
from ..domain.signals import NewSignal
from .base import (
    AgentKey,
    AlertBuilder,
    AnalystKey,
    Heartbeat,
    HistoryRule,
    InvalidCursor,
    StoreUnavailable,
    SummaryBuilder,
)

DAY_NS = 86_400 * 1_000_000_000
MAX_SEQ = 2**63 - 1
FORWARD_POSITION_KEY = "forward_position"  # in `meta`
KEYS_VERSION_KEY = "keys_version"  # in `meta`: moved by every change to keys

SIGNAL_COLUMNS = ("signal_id, ts, host_id, rule_id, rule_description, severity, title, tags, "
                  "context, status, received_at, shortened, original_context_bytes")
SEQ = len(SIGNAL_COLUMNS.split(","))  # where `seq` stands when selected after the columns
AGENT_FIELDS = ("agent_id", "timestamp", "version", "os_version", "uptime_seconds",
                "received_at", "first_seen", "last_seen", "status", "stale_since", "auth")
AGENT_COLUMNS = ("agent_id, last_timestamp AS timestamp, version, os_version, uptime_seconds, "
                 "last_seen AS received_at, first_seen, last_seen, status, stale_since, auth")
AGENT_KEY_COLUMNS = ("key_id, key_hash, host_id, created_at, created_by, expires_at, "
                     "revoked_at, revoked_by, replaces, last_used_at, last_used_from")
ANALYST_KEY_COLUMNS = ("key_id, key_hash, name, role, created_at, created_by, revoked_at, "
                       "revoked_by")


def signal_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row that starts with SIGNAL_COLUMNS, as the API shows a signal (by position: name
    lookups on sqlite3.Row cost more than the rest of a page)."""
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
        "shortened": row[11].split(",") if row[11] else [],
        "original_context_bytes": row[12],
    }


def shortened_column(signal: NewSignal) -> str | None:
    """What was cut, as stored: a comma list, NULL for the signals that lost nothing."""
    return ",".join(signal.shortened) or None


PROBLEM_COLUMNS = ("client", "kind", "count", "last_seen", "detail")


def problem_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row of PROBLEM_COLUMNS."""
    return dict(zip(PROBLEM_COLUMNS, row, strict=True))


def connection_problems_sql(since: str, limit: str) -> str:
    """Per (client, kind): the sum over the hours from `since`, and the last_seen and detail
    of the latest; `since` and `limit` are the engine's parameter placeholders."""
    return f"""
SELECT {", ".join(PROBLEM_COLUMNS)} FROM (
    SELECT client, kind, last_seen, detail,
           CAST(sum(count) OVER (PARTITION BY client, kind) AS bigint) AS count,
           row_number() OVER (PARTITION BY client, kind
                              ORDER BY last_seen DESC, hour DESC) AS latest
    FROM connection_problems WHERE hour >= {since}) AS per_hour
WHERE latest = 1 ORDER BY last_seen DESC, client, kind LIMIT {limit}"""


def agent_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row of AGENT_COLUMNS."""
    return dict(zip(AGENT_FIELDS, row, strict=True))


KEPT_BEAT_COLUMNS = "received_at, timestamp, version, os_version, uptime_seconds, reasons"


def kept_beat(row: Sequence[Any]) -> KeptBeat:
    """A row of KEPT_BEAT_COLUMNS."""
    return KeptBeat(*row[:5], reasons=decode_reasons(row[5]))


def agent_history_sql(agent_id: str, since: str, until: str) -> str:
    """An agent's kept heartbeats received in [since, until), with the last one before the
    window and the first one at or after its end, oldest first; each part is one walk of the
    (agent_id, received_at) index. The arguments are the engine's parameter placeholders."""
    beats = f"SELECT {KEPT_BEAT_COLUMNS} FROM heartbeats WHERE agent_id = {agent_id} AND"
    return (f"SELECT * FROM ({beats} received_at < {since} "
            f"ORDER BY received_at DESC LIMIT 1) AS before_window "
            f"UNION ALL SELECT * FROM ({beats} received_at >= {since} "
            f"AND received_at < {until}) AS in_window "
            f"UNION ALL SELECT * FROM ({beats} received_at >= {until} "
            f"ORDER BY received_at LIMIT 1) AS after_window "
            "ORDER BY received_at")


# How a flush's latest heartbeat of an agent (`excluded`) updates its row: never back to an
# older one (another server's flush may have stored a newer), and how the agent authenticated
# only when that is known.
AGENT_UPSERT = ("ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen, "
                "last_timestamp = excluded.last_timestamp, version = excluded.version, "
                "os_version = excluded.os_version, uptime_seconds = excluded.uptime_seconds, "
                "status = 'active', stale_since = NULL, "
                "auth = coalesce(excluded.auth, agents.auth) "
                "WHERE excluded.last_seen > agents.last_seen")


def last_beats_sql(agent_ids: str) -> str:
    """What a flush needs to know of each agent it has heartbeats for (LastBeat): its latest
    heartbeat, whether it is stale, and when its history last kept one. `agent_ids` is the
    engine's expression for the ids (placeholders, a subquery)."""
    return ("SELECT agent_id, last_seen, last_timestamp, version, os_version, uptime_seconds, "
            "status = 'stale', (SELECT received_at FROM heartbeats h WHERE h.agent_id = "
            "agents.agent_id ORDER BY received_at DESC LIMIT 1) "
            f"FROM agents WHERE agent_id IN ({agent_ids})")


def last_beat(row: Sequence[Any]) -> tuple[str, LastBeat]:
    """A row of last_beats_sql: (agent id, what is stored about it)."""
    return row[0], LastBeat(*row[1:6], stale=bool(row[6]), kept_at=row[7])


@dataclass(slots=True)
class HeartbeatWrites:
    """What a flush of heartbeats writes, worked out from what is stored about their agents
    (store.base.Store.record_heartbeats says what applies)."""

    # History rows: (agent_id, timestamp, version, os_version, uptime_seconds, received_at,
    # reasons), in order of receipt.
    kept: list[tuple[Any, ...]]
    # Each agent's new latest heartbeat, with the first_seen of an agent new to the store (its
    # first heartbeat of this flush), in agent order.
    latest: list[tuple[Heartbeat, str]]
    # Stale agents heard from again: (agent, silent since, heard again), in agent order.
    reconnected: list[tuple[str, str, str]]


def heartbeat_writes(beats: Iterable[Heartbeat], stored: dict[str, LastBeat],
                     history: HistoryRule) -> HeartbeatWrites:
    """`stored` is what the store holds about these heartbeats' agents (none for a new one)."""
    last = dict(stored)
    kept: list[tuple[Any, ...]] = []
    latest: dict[str, Heartbeat] = {}
    first_seen: dict[str, str] = {}
    reconnected: dict[str, tuple[str, str, str]] = {}
    for beat in sorted(beats, key=lambda beat: beat.received_at):
        previous = last.get(beat.agent_id)
        if previous is not None and beat.received_at <= previous.received_at:
            continue  # a newer one is stored already (another server, a re-sent flush)
        reasons = history.reasons(previous, beat)
        if RETURN in reasons and previous is not None and previous.timestamp is not None:
            kept.append((beat.agent_id, previous.timestamp, previous.version,
                         previous.os_version, previous.uptime_seconds, previous.received_at,
                         LAST))
        if reasons:
            kept.append((beat.agent_id, beat.timestamp, beat.version, beat.os_version,
                         beat.uptime_seconds, beat.received_at, encode_reasons(reasons)))
        if previous is not None and previous.stale:
            reconnected[beat.agent_id] = (beat.agent_id, previous.received_at,
                                          beat.received_at)
        latest[beat.agent_id] = beat
        if previous is None:
            first_seen[beat.agent_id] = beat.received_at
        last[beat.agent_id] = LastBeat(
            beat.received_at, beat.timestamp, beat.version, beat.os_version,
            beat.uptime_seconds, stale=False,
            kept_at=beat.received_at if reasons else previous.kept_at)
    return HeartbeatWrites(
        kept, [(latest[agent_id], first_seen.get(agent_id, latest[agent_id].received_at))
               for agent_id in sorted(latest)],
        [reconnected[agent_id] for agent_id in sorted(reconnected)])


def agent_key(row: Sequence[Any]) -> AgentKey:
    """A row of AGENT_KEY_COLUMNS."""
    return AgentKey(row[0], bytes(row[1]), *row[2:])


def analyst_key(row: Sequence[Any]) -> AnalystKey:
    """A row of ANALYST_KEY_COLUMNS."""
    return AnalystKey(row[0], bytes(row[1]), *row[2:])


def stale_alerts(silent: list[SilentAgent], now: str, alert: AlertBuilder,
                 summary: SummaryBuilder | None) -> list[NewSignal]:
    """The alerts for the agents one check found silent: one for all, or one each."""
    if not silent:
        return []
    one = summary(silent, now) if summary is not None else None
    return [one] if one is not None else [alert(agent, now) for agent in silent]


# -- cursors: where a page ended, as (ts, seq) of its last signal ---------------------------

def encode_cursor(ts: str, seq: int) -> str:
    raw = orjson.dumps({"ts": ts, "seq": seq})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ts, seq = doc["ts"], doc["seq"]
        if not isinstance(ts, str) or type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise ValueError("wrong types")
        return timeutil.normalize(ts), seq
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor("invalid cursor; pass next_cursor from a previous page") from None


def like_pattern(term: str) -> str:
    """A LIKE pattern (escaped by backslash) matching `term` anywhere, its wildcards literal."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- /stats ----------------------------------------------------------------------------------

def stats_document(*, last_24h: int, by_severity_status: Iterable[Sequence[Any]],
                   by_host: dict[str, int], top_rules: dict[str, int],
                   agents: dict[str, int]) -> dict[str, Any]:
    """/stats from the counter tables: (severity, status, n) rows, the top hosts and rules,
    and agents per status."""
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


# -- ingest calls stored together -------------------------------------------------------------

def first_occurrences(calls: Iterable[list[NewSignal]]) -> list[NewSignal]:
    """The signals of several insert calls stored in one transaction: within it, the first
    occurrence of an id wins."""
    unique: dict[str, NewSignal] = {}
    for signals in calls:
        for s in signals:
            unique.setdefault(s.signal_id, s)
    return list(unique.values())


def stored_flags(calls: Iterable[list[NewSignal]], stored: set[str]) -> list[list[bool]]:
    """Per call and signal, whether this occurrence is the one stored (`stored` is consumed)."""
    results = []
    for signals in calls:
        flags = []
        for s in signals:
            flags.append(s.signal_id in stored)
            stored.discard(s.signal_id)  # a repeat within the transaction is a duplicate
        results.append(flags)
    return results


# -- the health probe -------------------------------------------------------------------------

# The health probe stores (and removes) a signal with a context of a typical size.
PROBE_CONTEXT = orjson.dumps({"kind": "health_probe", "padding": "x" * 4000})
# After a signal could not be stored, /health fails for this long unless one is stored since,
# even when its own probe fits: real batches need more room than the probe.
INGEST_FAILURE_MEMORY_SECONDS = 30.0


def probe_signal(now: str) -> NewSignal:
    """What /health stores and removes in one transaction: nobody ever sees it, but it writes
    what a real signal writes, so it fails where a real signal would."""
    return NewSignal(signal_id=f"santamon-health-probe-{now}", ts=now,
                     host_id="santamon-health-probe", rule_id="SANTAMON-HEALTH",
                     severity="info", title="health probe", tags_json=b"[]",
                     context_json=PROBE_CONTEXT, rule_description=None)


class IngestFailures:
    """The last time signals could not be stored, until some are."""

    def __init__(self) -> None:
        self._last: tuple[float, str] | None = None  # (monotonic time, why)

    def failed(self, why: str) -> None:
        self._last = (time.monotonic(), why)

    def stored(self) -> None:
        self._last = None

    def check(self) -> None:
        """Raise StoreUnavailable if signals failed to be stored a moment ago."""
        last = self._last
        if last and time.monotonic() - last[0] < INGEST_FAILURE_MEMORY_SECONDS:
            raise StoreUnavailable(f"the last signals could not be stored: {last[1]}")
