"""What every engine does the same way, whatever its SQL: how a row becomes a signal, a
silence or a key, connection problems summed per client, cursors, search terms, the /stats
document, results of grouped inserts, what a flush of heartbeats writes, triage by filter in
chunks, which stale alerts to raise (held, one each, or one for many), how a page of groups is
found, and the health probe."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .. import timeutil
from ..domain.agents import SilentAgent
from ..domain.heartbeats import LAST, RETURN, KeptBeat, LastBeat, decode_reasons, encode_reasons
from ..domain.signals import SEVERITIES, STATUSES, NewSignal
from ..domain.silences import WILDCARD, Matchers, Silence
from .base import (
    AgentKey,
    AlertBuilder,
    AnalystKey,
    GroupPage,
    Heartbeat,
    HistoryRule,
    InvalidCursor,
    JobRecord,
    JobRun,
    SignalFilter,
    StoreUnavailable,
    SummaryBuilder,
)

DAY_NS = 86_400 * 1_000_000_000
MAX_SEQ = 2**63 - 1
FORWARD_POSITION_KEY = "forward_position"  # in `meta`
SILENCES_VERSION_KEY = "silences_version"  # in `meta`: bumped by every change of a silence
KEYS_VERSION_KEY = "keys_version"  # in `meta`: moved by every change to keys
SEARCH_MAX_TITLES = 500  # beyond this many matching titles, search filters while it walks
# In `meta` too, one row per job: its last run as JSON (job_record_value). From this key up to
# (not including) JOB_KEYS_END are the jobs' rows.
JOB_KEY_PREFIX, JOB_KEYS_END = "job:", "job;"

SIGNAL_COLUMNS = ("signal_id, ts, host_id, rule_id, rule_description, severity, title, tags, "
                  "context, status, received_at, silence_id, shortened, original_context_bytes")
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
        "silence_id": row[11],
        "shortened": row[12].split(",") if row[12] else [],
        "original_context_bytes": row[13],
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
                "status = 'active', stale_since = NULL, alert_held = false, "
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


# -- silences --------------------------------------------------------------------------------

SILENCE_COLUMNS = ("id, rule_id, host_id, severity, title, comment, created_by, created_at, "
                   "ends_at, expired_at, expired_by, (SELECT CAST(coalesce(sum(n), 0) AS bigint) "
                   "FROM silence_counts WHERE silence_id = silences.id)")


def silence_row(row: Sequence[Any]) -> Silence:
    """A row of SILENCE_COLUMNS."""
    return Silence(id=row[0], matchers=Matchers(row[1], row[2], row[3], row[4]),
                   comment=row[5], created_by=row[6], created_at=row[7], ends_at=row[8],
                   expired_at=row[9], expired_by=row[10], signals=row[11])


def resolution_note(silence_id: int, comment: str) -> str:
    """The history note on a signal resolved by creating a silence."""
    return f"resolved with silence #{silence_id}: {comment}"


# -- stale agents: alerts held by maintenance windows, many at once in one alert -------------

@dataclass(slots=True)
class StaleAlerts:
    alerts: list[NewSignal]  # to insert
    held: list[str]  # newly stale agents whose alert is held
    raised: list[str]  # agents held before whose alert comes now
    reported: list[str]  # what mark_stale_agents answers: marked or alerted


def stale_alerts(silent: list[SilentAgent], held: list[SilentAgent], now: str,
                 alert: AlertBuilder, summary: SummaryBuilder | None) -> StaleAlerts:
    """What a stale check does with the agents it marks (`silent`) and the ones already stale
    whose alert was held: each is asked for its alert, and held while the builder gives none.

    The alerts that would be seen in the queue become the one alert `summary` builds for their
    agents, when it builds one. A held agent is not in it: a maintenance window expects its
    silence, so it is neither alerted nor counted as part of an outage. A silenced alert is
    not in it either: it is stored on its own, marked with its silence, like any signal a
    silence matches, so the summary never makes loud what a silence quiets."""
    built = {agent.agent_id: alert(agent, now) for agent in [*silent, *held]}
    raised = [agent.agent_id for agent in held if built[agent.agent_id] is not None]
    alerts = [a for a in built.values() if a is not None]
    loud = [agent for agent in [*silent, *held]
            if (a := built[agent.agent_id]) is not None and a.silence_id is None]
    one = summary(loud, now) if summary is not None and loud else None
    if one is not None:
        alerts = [*(a for a in alerts if a.silence_id is not None), one]
    return StaleAlerts(
        alerts=alerts,
        held=[agent.agent_id for agent in silent if built[agent.agent_id] is None],
        raised=raised, reported=[agent.agent_id for agent in silent] + raised)


# -- triage by filter ---------------------------------------------------------------------------

# Triage by filter changes this many signals per transaction: short enough that ingest is
# committed between two of them.
TRIAGE_CHUNK = 500


async def triage_in_chunks(next_ids: Callable[[int], Awaitable[list[str]]],
                           change: Callable[[list[str]], Awaitable[int]],
                           limit: int) -> tuple[int, bool]:
    """Change up to `limit` signals chunk by chunk: `next_ids(n)` names up to n signals still
    to change (the ones changed leave the match), `change` changes them in one transaction
    and says how many it really changed. Returns (changed, whether any are left)."""
    changed = 0
    while changed < limit:
        ids = await next_ids(min(TRIAGE_CHUNK, limit - changed))
        if not ids:
            return changed, False
        changed += await change(ids)
    return changed, bool(await next_ids(1))


# -- cursors: where a page ended -------------------------------------------------------------

INVALID_CURSOR = "invalid cursor; pass next_cursor from a previous page"


def _encode(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor(INVALID_CURSOR) from None


# A page of signals ends at (ts, seq) of its last signal.
def encode_cursor(ts: str, seq: int) -> str:
    return _encode({"ts": ts, "seq": seq})


def decode_cursor(cursor: str) -> tuple[str, int]:
    doc = _decode(cursor)
    try:
        ts, seq = doc["ts"], doc["seq"]
        if not isinstance(ts, str) or type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise ValueError("wrong types")
        return timeutil.normalize(ts), seq
    except (ValueError, TypeError, KeyError):
        raise InvalidCursor(INVALID_CURSOR) from None


# A page of groups ends at (last event time, rule, host) of its last group: their order.
def encode_group_cursor(last_ts: str, rule_id: str, host_id: str) -> str:
    return _encode({"group": [last_ts, rule_id, host_id]})


def decode_group_cursor(cursor: str) -> tuple[str, str, str]:
    doc = _decode(cursor)
    key = doc.get("group") if isinstance(doc, dict) else None
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise InvalidCursor(INVALID_CURSOR + " of groups")
    try:
        return timeutil.normalize(key[0]), key[1], key[2]
    except ValueError:
        raise InvalidCursor(INVALID_CURSOR + " of groups") from None


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(term: str) -> str:
    """A LIKE pattern (escaped by backslash) matching `term` anywhere, its wildcards literal."""
    return f"%{_like_literal(term)}%"


def glob_like_pattern(glob: str) -> str:
    """A silence's title glob (`domain.silences`) as a LIKE pattern escaped by backslash: a
    case-sensitive LIKE then matches exactly the titles the glob does."""
    return "%".join(_like_literal(part) for part in glob.split(WILDCARD))


# -- groups of repeats ------------------------------------------------------------------------
# Without a time window or a search, groups come from `group_counts` (kept by each engine's
# triggers): walking its buckets newest first finds a page of groups without touching the
# signals. A time window or a search groups the matching signals themselves. The engines
# differ only in their SQL (a GroupSource); how a page is found is here.

GroupKey = tuple[str, str, str]  # (last event time, rule, host): groups come in its order
# A bucket of group_counts: rule_id, host_id, status, severity, silence_id (0: none), n,
# first_ts, last_ts, and the id of a signal of the bucket at last_ts.
Bucket = Sequence[Any]
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
SEVERITY_RANK_SQL = ("CASE severity " + " ".join(f"WHEN '{severity}' THEN {rank}"
                                                 for severity, rank in SEVERITY_RANK.items())
                     + " ELSE -1 END")
# Rules a search covers whole, with at least this share of the signals, have their groups
# found by walking every group newest first (a page turns up soon); rarer ones are sorted.
WALK_MIN_SHARE = 0.25
MAX_WALK_BATCH = 20_000
ABOVE_EVERY_TIME = ("\uffff", "", "")


class GroupSource(Protocol):
    """One engine's queries for a page of groups, all in one snapshot. `rules`: the rules a
    search covers whole, or None."""

    async def matching_titles(self, pattern: str) -> list[tuple[str, str]]:
        """(rule, title) pairs of stored signals matching a LIKE pattern, at most
        SEARCH_MAX_TITLES + 1."""

    async def titles_per_rule(self, rules: list[str]) -> dict[str, int]: ...

    async def share_of(self, rules: list[str]) -> float:
        """The share of all signals these rules hold."""

    async def sorted_groups(self, query: SignalFilter, rules: list[str] | None,
                            after: GroupKey | None) -> list[GroupKey]:
        """The keys of the next `query.limit + 1` groups, by grouping every bucket the
        filters match (a host's or a rule's few)."""

    async def walk(self, query: SignalFilter, rules: list[str] | None, after: GroupKey | None,
                   below: GroupKey, batch: int) -> list[Sequence[Any]]:
        """Up to `batch` buckets under the filters, newest last event first, below `below`:
        (last_ts, rule, host) and, past a cursor, the newest last_ts of that group's buckets
        under the filters."""

    async def buckets(self, query: SignalFilter, rules: list[str] | None,
                      keys: list[GroupKey]) -> list[Bucket]:
        """Every bucket of these groups under the filters."""

    async def newest_signals(self, query: SignalFilter, count: int) -> list[Sequence[Any]]:
        """(ts, rule, host) of the `count` newest signals the filters match (no search)."""

    async def window_buckets(self, query: SignalFilter, keys: list[GroupKey]) -> list[Bucket]:
        """The signals of these groups the filters match (no search), as buckets."""

    async def grouped_signals(self, query: SignalFilter,
                              after: GroupKey | None) -> list[Sequence[Any]] | None:
        """The next `query.limit + 1` groups of the signals the filters match, each as
        (last_ts, rule, host, count, first_ts, rank of the highest severity, a count per
        STATUSES, silenced, the newest signal's id); None when a search matches nothing."""


async def group_page(source: GroupSource, query: SignalFilter) -> GroupPage:
    after = decode_group_cursor(query.cursor) if query.cursor else None
    rules = None
    if query.search and not (query.since or query.until):
        rules = await _rules_wholly_matched(source, query.search)
        if rules == []:
            return GroupPage([], None)
    if (query.search and rules is None) or query.since or query.until:
        if after is None and not (query.search or query.host_id or query.rule_id):
            return await _first_groups_of_window(source, query)
        return await _groups_of_signals(source, query, after)
    # One rule's groups are sorted (a few thousand buckets at most); a search's rules are
    # walked when they are common.
    share = await source.share_of(rules) if rules and not query.rule_id else 1.0
    if query.host_id or query.rule_id or share < WALK_MIN_SHARE:
        keys = await source.sorted_groups(query, rules, after)
    else:
        keys = await _walk_groups(source, query, rules, after, share)
    groups = fold_buckets(await source.buckets(query, rules, keys[:query.limit]))
    return _page_of(keys, groups, query.limit)


def _page_of(keys: list[GroupKey], groups: dict[tuple[str, str], dict[str, Any]],
             limit: int) -> GroupPage:
    next_cursor = encode_group_cursor(*keys[limit - 1]) if len(keys) > limit else None
    return GroupPage([groups[(rule, host)] for _, rule, host in keys[:limit]], next_cursor)


async def _rules_wholly_matched(source: GroupSource, search: str) -> list[str] | None:
    """The rules a search matches, when it matches every title of each (then it is a filter
    on the rules, which `group_counts` answers); None when it matches only some titles."""
    pairs = await source.matching_titles(like_pattern(search))
    if len(pairs) > SEARCH_MAX_TITLES:
        return None
    matched: dict[str, int] = {}
    for rule, _ in pairs:
        matched[rule] = matched.get(rule, 0) + 1
    if not matched:
        return []
    titles = await source.titles_per_rule(list(matched))
    return sorted(matched) if titles == matched else None


async def _walk_groups(source: GroupSource, query: SignalFilter, rules: list[str] | None,
                       after: GroupKey | None, share: float) -> list[GroupKey]:
    """The keys of the next `limit + 1` groups: the buckets newest first; the first bucket met
    of a group carries its last event time. Past a cursor, a group met here may have a newer
    bucket above it: it was on an earlier page."""
    # A group has one to a few buckets; a filter passes over others' buckets: each further
    # read goes four times as far, so a sparse filter takes few round trips.
    batch = min(MAX_WALK_BATCH, int((query.limit + 1) * 3 / share))
    keys: list[GroupKey] = []
    seen: set[tuple[str, str]] = set()
    below = after or ABOVE_EVERY_TIME
    while True:
        rows = await source.walk(query, rules, after, below, batch)
        for row in rows:
            last_ts, rule, host = row[:3]
            if (rule, host) in seen:
                continue
            seen.add((rule, host))
            if after is None or row[3] == last_ts:
                keys.append((last_ts, rule, host))
                if len(keys) > query.limit:
                    return keys
        if len(rows) < batch:
            return keys
        below = (rows[-1][0], rows[-1][1], rows[-1][2])
        batch = min(MAX_WALK_BATCH, batch * 4)


def fold_buckets(rows: Iterable[Bucket]) -> dict[tuple[str, str], dict[str, Any]]:
    """Buckets into one entry per group."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for rule, host, status, severity, silence_id, n, first_ts, last_ts, newest in rows:
        group = groups.get((rule, host))
        if group is None:
            group = groups[(rule, host)] = {
                "rule_id": rule, "host_id": host, "count": 0, "first_ts": first_ts,
                "last_ts": last_ts, "severity": severity, "by_status": {}, "silenced": 0,
                "sample_signal_id": newest}
        group["count"] += n
        group["by_status"][status] = group["by_status"].get(status, 0) + n
        if silence_id:
            group["silenced"] += n
        group["first_ts"] = min(group["first_ts"], first_ts)
        if last_ts > group["last_ts"]:
            group["last_ts"], group["sample_signal_id"] = last_ts, newest
        if SEVERITY_RANK.get(severity, -1) > SEVERITY_RANK.get(group["severity"], -1):
            group["severity"] = severity
    return groups


async def _first_groups_of_window(source: GroupSource, query: SignalFilter) -> GroupPage:
    """The first page of a time window: its newest signals name the groups (a page turns up
    within the first few dozen of them, not after grouping the whole window), and each one's
    signals in the window are counted through the group index."""
    fetch = (query.limit + 1) * 4
    while True:
        rows = await source.newest_signals(query, fetch)
        keys: list[GroupKey] = []
        seen: set[tuple[str, str]] = set()
        for ts, rule, host in rows:
            if (rule, host) not in seen:
                seen.add((rule, host))
                keys.append((ts, rule, host))
        # Done once past the page, and past every group tied with its last one (groups
        # sharing a time come in rule and host order, as in later pages).
        if len(rows) < fetch or (len(keys) > query.limit and rows[-1][0] < keys[query.limit][0]):
            break
        fetch *= 4  # read again, further: cheaper than keeping a position among equal times
    keys = sorted(keys, reverse=True)[:query.limit + 1]
    groups = fold_buckets(await source.window_buckets(query, keys[:query.limit]))
    return _page_of(keys, groups, query.limit)


async def _groups_of_signals(source: GroupSource, query: SignalFilter,
                             after: GroupKey | None) -> GroupPage:
    rows = await source.grouped_signals(query, after)
    if rows is None:
        return GroupPage([], None)
    groups = []
    for last, rule, host, count, first, top, *rest in rows[:query.limit]:
        *statuses, silenced, sample_id = rest
        groups.append({
            "rule_id": rule, "host_id": host, "count": count, "first_ts": first,
            "last_ts": last, "severity": SEVERITIES[top] if top >= 0 else None,
            "by_status": {status: n for status, n in zip(STATUSES, statuses, strict=True) if n},
            "silenced": silenced, "sample_signal_id": sample_id})
    next_cursor = (encode_group_cursor(rows[query.limit - 1][0], rows[query.limit - 1][1],
                                       rows[query.limit - 1][2])
                   if len(rows) > query.limit else None)
    return GroupPage(groups, next_cursor)


# -- /stats ----------------------------------------------------------------------------------

def stats_document(*, last_24h: int, by_severity_status: Iterable[Sequence[Any]],
                   silenced_open: dict[str, int], by_host: dict[str, int],
                   top_rules: dict[str, int], agents: dict[str, int]) -> dict[str, Any]:
    """/stats from the counter tables: (severity, status, n) rows, open silenced signals per
    severity, the top hosts and rules, and agents per status."""
    by_severity: dict[str, int] = {}
    by_status: dict[str, int] = {}
    open_by_severity: dict[str, int] = {}
    for severity, status, n in by_severity_status:
        by_severity[severity] = by_severity.get(severity, 0) + n
        by_status[status] = by_status.get(status, 0) + n
        if status == "open" and n > silenced_open.get(severity, 0):
            open_by_severity[severity] = n - silenced_open.get(severity, 0)
    return {
        "total_signals": sum(by_status.values()),
        "last_24h": last_24h,
        "by_severity": by_severity,
        "by_status": by_status,
        "open_by_severity": open_by_severity,
        "silenced_open": sum(silenced_open.values()),
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


# -- background jobs' last runs ---------------------------------------------------------------

def job_record_value(previous: str | None, run: JobRun) -> str:
    """What `meta` keeps for a job after `run`, given what it kept before."""
    before = orjson.loads(previous) if previous else {}
    failed = run.outcome == "failed"
    in_a_row = before.get("consecutive_failures", 0)
    return orjson.dumps({
        "instance": run.instance, "started_at": run.started_at, "outcome": run.outcome,
        "message": run.message, "duration_seconds": run.duration_seconds,
        "runs": before.get("runs", 0) + 1,
        "failures": before.get("failures", 0) + failed,
        # A skipped run (backing off) neither fails nor succeeds.
        "consecutive_failures": in_a_row + 1 if failed else 0 if run.outcome == "ok"
        else in_a_row,
    }).decode()


def job_record(key: str, value: str) -> JobRecord:
    doc = orjson.loads(value)
    return JobRecord(
        JobRun(key.removeprefix(JOB_KEY_PREFIX), doc["instance"], doc["started_at"],
               doc["outcome"], doc["message"], doc["duration_seconds"]),
        runs=doc["runs"], failures=doc["failures"],
        consecutive_failures=doc["consecutive_failures"])
