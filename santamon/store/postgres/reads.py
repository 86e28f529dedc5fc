"""Every read of the PostgreSQL store, on a pooled connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from ... import timeutil
from ...domain.signals import STATUSES
from ...domain.silences import Matchers, Silence
from ..base import (
    AgentFilter,
    AgentHistory,
    AgentKey,
    AnalystKey,
    ConsoleSession,
    ForwardBatch,
    ForwardPosition,
    GroupPage,
    JobRecord,
    SignalFilter,
    SignalPage,
)
from ..common import (
    AGENT_COLUMNS,
    AGENT_KEY_COLUMNS,
    ANALYST_KEY_COLUMNS,
    DAY_NS,
    FORWARD_POSITION_KEY,
    JOB_KEY_PREFIX,
    JOB_KEYS_END,
    KEYS_VERSION_KEY,
    SEARCH_MAX_TITLES,
    SEQ,
    SEVERITY_RANK_SQL,
    SIGNAL_COLUMNS,
    SILENCE_COLUMNS,
    SILENCES_VERSION_KEY,
    GroupKey,
    agent_history_sql,
    agent_key,
    agent_row,
    analyst_key,
    connection_problems_sql,
    decode_cursor,
    encode_cursor,
    glob_like_pattern,
    group_page,
    job_record,
    kept_beat,
    like_pattern,
    problem_row,
    signal_row,
    silence_row,
    stats_document,
)

SEARCH_BY_RULE_MAX_ROWS = 20_000  # an unfiltered search matching more walks newest first


class Params:
    """Numbered query parameters ($1, $2, ...) collected while a query is put together."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# -- signals ---------------------------------------------------------------------------------

async def _conditions(conn: asyncpg.Connection, query: SignalFilter, p: Params, *,
                      severities: bool = True) -> list[str] | None:
    """The WHERE terms of a filter (its cursor aside, and its severities unless a caller walks
    each severity itself); None when a search matches no title."""
    where: list[str] = []
    if query.status is not None:
        where.append(f"status = {p(query.status)}")
    if severities and query.severities:
        where.append(f"severity = ANY({p(list(query.severities))}::text[])")
    if query.host_id:
        where.append(f"host_id = {p(query.host_id)}")
    if query.rule_id:
        where.append(f"rule_id = {p(query.rule_id)}")
    if query.silenced is not None:
        where.append(f"silence_id IS {'NOT ' if query.silenced else ''}NULL")
    if query.search:
        pattern = like_pattern(query.search)
        pairs = await _matching_titles(conn, pattern)
        if not pairs:
            return None
        like = f"(title ILIKE {p(pattern)} OR rule_id ILIKE {p(pattern)})"
        unfiltered = query.status is None and not query.severities
        broad = len(pairs) > SEARCH_MAX_TITLES or (
            unfiltered and sum(n for *_, n in pairs) > SEARCH_BY_RULE_MAX_ROWS)
        if broad:
            # A search matching many signals: a newest-first walk finds a page fast.
            where.append(like)
        else:
            # The few matching (rule, title) pairs lead to the signals through the rule
            # index, which also checks status and severity.
            rules = sorted({rule for rule, _, _ in pairs})
            titles = sorted({title for _, title, _ in pairs})
            where.append(f"{_one_of('rule_id', rules, p)} AND "
                         f"title = ANY({p(titles)}::text[]) AND {like}")
    if query.since:
        where.append(f"ts >= {p(query.since)}")
    if query.until:
        where.append(f"ts < {p(query.until)}")
    return where


def _where(terms: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(terms) if terms else ""


async def list_signals(conn: asyncpg.Connection, query: SignalFilter) -> SignalPage:
    p = Params()
    where = await _conditions(conn, query, p, severities=False)
    if where is None:
        return SignalPage([], None)
    if query.cursor:
        ts, seq = decode_cursor(query.cursor)
        where.append(f"(ts, seq) < ({p(ts)}, {p(seq)})")
    limit = p(query.limit + 1)
    order = f"ORDER BY ts DESC, seq DESC LIMIT {limit}"

    def walk(conditions: list[str]) -> str:
        return f"SELECT {SIGNAL_COLUMNS}, seq FROM signals{_where(conditions)} {order}"

    severities = query.severities or ()
    if len(severities) > 1:
        # The index checks one severity (`=`) as it walks, not a list: one walk per
        # severity, each stopping at a page, merged newest first.
        sql = "SELECT * FROM (" + " UNION ALL ".join(
            f"({walk([*where, f'severity = {p(severity)}'])})" for severity in severities
        ) + f") AS walks {order}"
    else:
        sql = walk([*where, f"severity = {p(severities[0])}"] if severities else where)
    rows = await conn.fetch(sql, *p.values)
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(last[1], last[SEQ])
        rows = rows[:query.limit]
    return SignalPage([signal_row(row) for row in rows], next_cursor)


async def matching_ids(conn: asyncpg.Connection, query: SignalFilter, not_status: str,
                       max_seq: int, limit: int) -> list[str]:
    """Up to `limit` signals that match `query`, are not in `not_status` and were stored at
    or before `max_seq`: the next chunk of a triage by filter. Signals it changes leave the
    match, so the next call finds the next ones."""
    p = Params()
    where = await _conditions(conn, query, p)
    if where is None:
        return []
    # The other statuses by name, so that a group is read from its index (rule, host,
    # status) past the signals already done.
    others = [status for status in STATUSES if status != not_status]
    where += [f"status = ANY({p(others)}::text[])", f"seq <= {p(max_seq)}"]
    return [row[0] for row in await conn.fetch(
        f"SELECT signal_id FROM signals{_where(where)} LIMIT {p(limit)}", *p.values)]


async def max_seq(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(seq), 0) FROM signals")


# -- groups of repeats (common.group_page) -----------------------------------------------------

async def signal_groups(conn: asyncpg.Connection, query: SignalFilter) -> GroupPage:
    """Run in one REPEATABLE READ transaction: the groups a page names are the ones whose
    counts it shows, whatever triage does meanwhile."""
    return await group_page(_GroupQueries(conn), query)


# A bucket's signals: the bucket's key on `b`, in the order of idx_signals_group.
_IN_BUCKET = ("s.rule_id = b.rule_id AND s.host_id = b.host_id AND s.status = b.status AND "
              "s.severity = b.severity AND coalesce(s.silence_id, 0) = b.silence_id")


def _bucket_conditions(query: SignalFilter, rules: list[str] | None, p: Params) -> list[str]:
    where = ["last_ts IS NOT NULL"]  # an emptied bucket has no times
    if query.status is not None:
        where.append(f"status = {p(query.status)}")
    if query.severities:
        where.append(f"severity = ANY({p(list(query.severities))}::text[])")
    if query.silenced is not None:
        where.append("silence_id <> 0" if query.silenced else "silence_id = 0")
    if query.host_id:
        where.append(f"host_id = {p(query.host_id)}")
    for_rules = [query.rule_id] if query.rule_id else rules
    if for_rules:
        where.append(f"rule_id = ANY({p(for_rules)}::text[])")
    return where


def _of_groups(keys: list[GroupKey], p: Params) -> str:
    """Rows whose (rule_id, host_id) is one of these groups'."""
    rules, hosts = p([rule for _, rule, _ in keys]), p([host for *_, host in keys])
    return f"(rule_id, host_id) IN (SELECT * FROM unnest({rules}::text[], {hosts}::text[]))"


class _GroupQueries:
    """The SQL of common.GroupSource for PostgreSQL, on one connection in one snapshot."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def matching_titles(self, pattern: str) -> list[tuple[str, str]]:
        return [(rule, title) for rule, title, _ in await _matching_titles(self._conn, pattern)]

    async def titles_per_rule(self, rules: list[str]) -> dict[str, int]:
        return dict(await self._conn.fetch(
            "SELECT rule_id, count(*) FROM signal_titles WHERE n > 0 AND "
            "rule_id = ANY($1::text[]) GROUP BY rule_id", rules))

    async def share_of(self, rules: list[str]) -> float:
        part, total = await self._conn.fetchrow(
            "SELECT (SELECT coalesce(sum(n), 0) FROM rule_counts WHERE "
            "rule_id = ANY($1::text[]))::float8, "
            "(SELECT coalesce(sum(n), 0) FROM rule_counts)::float8", rules)
        return part / total if total else 1.0

    async def sorted_groups(self, query: SignalFilter, rules: list[str] | None,
                            after: GroupKey | None) -> list[GroupKey]:
        p = Params()
        where = _bucket_conditions(query, rules, p)
        having = (f" HAVING (max(last_ts), rule_id, host_id) < ({p(after[0])}, {p(after[1])}, "
                  f"{p(after[2])})" if after else "")
        rows = await self._conn.fetch(
            f"SELECT max(last_ts), rule_id, host_id FROM group_counts{_where(where)} "
            f"GROUP BY rule_id, host_id{having} ORDER BY 1 DESC, 2 DESC, 3 DESC "
            f"LIMIT {p(query.limit + 1)}", *p.values)
        return [(row[0], row[1], row[2]) for row in rows]

    async def walk(self, query: SignalFilter, rules: list[str] | None, after: GroupKey | None,
                   below: GroupKey, batch: int) -> list[Sequence[Any]]:
        """Each status's buckets newest first from idx_group_counts_walk, merged (a Merge
        Append of one index scan per status)."""
        p = Params()
        where = _bucket_conditions(query, rules, p)
        # Parameters are numbered: every arm and the subquery refer to the same ones.
        newest = (f", (SELECT max(last_ts) FROM group_counts AS g2 WHERE g2.rule_id = "
                  f"g.rule_id AND g2.host_id = g.host_id AND {' AND '.join(where)})"
                  if after else "")
        below_terms = f"(last_ts, rule_id, host_id) < ({p(below[0])}, {p(below[1])}, " \
                      f"{p(below[2])})"
        order = f" ORDER BY last_ts DESC, rule_id DESC, host_id DESC LIMIT {p(batch)}"
        arm = f"SELECT last_ts, rule_id, host_id{newest} FROM group_counts AS g"
        if query.status:
            sql = arm + _where([*where, below_terms]) + order
        else:
            sql = " UNION ALL ".join(
                f"({arm}{_where([*where, below_terms, f'status = {p(status)}'])}{order})"
                for status in STATUSES) + order
        return await self._conn.fetch(sql, *p.values)

    async def buckets(self, query: SignalFilter, rules: list[str] | None,
                      keys: list[GroupKey]) -> list[Sequence[Any]]:
        p = Params()
        where = [*_bucket_conditions(query, rules, p), _of_groups(keys, p)]
        return await self._conn.fetch(
            "SELECT rule_id, host_id, status, severity, silence_id, n, first_ts, last_ts, "
            f"(SELECT signal_id FROM signals AS s WHERE {_IN_BUCKET} AND s.ts = b.last_ts "
            f"LIMIT 1) FROM group_counts AS b{_where(where)}", *p.values)

    async def newest_signals(self, query: SignalFilter, count: int) -> list[Sequence[Any]]:
        p = Params()
        where = await _conditions(self._conn, query, p)
        assert where is not None  # no search: every filter is a plain condition
        return await self._conn.fetch(
            f"SELECT ts, rule_id, host_id FROM signals{_where(where)} "
            f"ORDER BY ts DESC, seq DESC LIMIT {p(count)}", *p.values)

    async def window_buckets(self, query: SignalFilter,
                             keys: list[GroupKey]) -> list[Sequence[Any]]:
        p = Params()
        where = await _conditions(self._conn, query, p)
        assert where is not None  # no search: every filter is a plain condition
        where.append(_of_groups(keys, p))
        return await self._conn.fetch(
            f"SELECT b.*, (SELECT signal_id FROM signals AS s WHERE {_IN_BUCKET} AND "
            "s.ts = b.last_ts LIMIT 1) FROM (SELECT rule_id, host_id, status, severity, "
            "coalesce(silence_id, 0) AS silence_id, count(*) AS n, min(ts) AS first_ts, "
            f"max(ts) AS last_ts FROM signals{_where(where)} "
            "GROUP BY rule_id, host_id, status, severity, coalesce(silence_id, 0)) AS b",
            *p.values)

    async def grouped_signals(self, query: SignalFilter,
                              after: GroupKey | None) -> list[Sequence[Any]] | None:
        p = Params()
        where = await _conditions(self._conn, query, p)
        if where is None:
            return None
        by_status = ", ".join(f"count(*) FILTER (WHERE status = '{status}')"
                              for status in STATUSES)
        having = (f" HAVING (max(ts), rule_id, host_id) < ({p(after[0])}, {p(after[1])}, "
                  f"{p(after[2])})" if after else "")
        inner = (f"SELECT max(ts) AS last, rule_id, host_id, count(*) AS n, min(ts) AS first, "
                 f"max({SEVERITY_RANK_SQL}) AS top, {by_status}, "
                 f"count(silence_id) AS silenced FROM signals{_where(where)} "
                 f"GROUP BY rule_id, host_id{having} ORDER BY 1 DESC, 2 DESC, 3 DESC "
                 f"LIMIT {p(query.limit + 1)}")
        # The newest matching signal of each group on the page: one probe by host and time.
        sample = ("(SELECT signal_id FROM signals WHERE host_id = page.host_id AND "
                  "ts = page.last AND rule_id = page.rule_id"
                  + "".join(f" AND {term}" for term in where) + " LIMIT 1)")
        return await self._conn.fetch(f"SELECT page.*, {sample} FROM ({inner}) AS page",
                                      *p.values)


def _one_of(column: str, values: list[str], p: Params) -> str:
    """`column = $n` for one value, which an index walk can check in the index (a list,
    `= ANY(...)`, is checked only on the rows it reads)."""
    if len(values) == 1:
        return f"{column} = {p(values[0])}"
    return f"{column} = ANY({p(values)}::text[])"


async def _matching_titles(conn: asyncpg.Connection,
                           pattern: str) -> list[tuple[str, str, int]]:
    rows = await conn.fetch(
        "SELECT rule_id, title, n FROM signal_titles WHERE n > 0 AND (title ILIKE $1 OR "
        "rule_id ILIKE $1) LIMIT $2", pattern, SEARCH_MAX_TITLES + 1)
    return [(row[0], row[1], row[2]) for row in rows]


async def get_signal(conn: asyncpg.Connection, signal_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {SIGNAL_COLUMNS}, (SELECT shipped_at FROM shipped "
        "WHERE shipped.signal_id = signals.signal_id) AS shipped_at "
        "FROM signals WHERE signal_id = $1", signal_id)
    if row is None:
        return None
    history = await conn.fetch(
        "SELECT from_status, to_status, changed_at, note, actor FROM signal_history "
        "WHERE signal_id = $1 ORDER BY id", signal_id)
    signal = signal_row(row)
    signal["shipped_at"] = row[SEQ]
    signal["history"] = [dict(entry) for entry in history]
    signal["silence"] = None
    if signal["silence_id"] is not None:
        found = await conn.fetchrow(f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = $1",
                                    signal["silence_id"])
        signal["silence"] = silence_row(found) if found else None
    return signal


async def list_agents(conn: asyncpg.Connection, query: AgentFilter) -> list[dict[str, Any]]:
    where: list[str] = []
    p = Params()
    if query.status is not None:
        where.append(f"status = {p(query.status)}")
    if query.since:
        where.append(f"last_seen >= {p(query.since)}")
    sql = (f"SELECT {AGENT_COLUMNS} FROM agents"
           + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY status = 'stale' DESC, last_seen DESC, agent_id LIMIT {p(query.limit)}")
    return [agent_row(row) for row in await conn.fetch(sql, *p.values)]


async def agent_history(conn: asyncpg.Connection, agent_id: str, since: str,
                        until: str) -> AgentHistory | None:
    row = await conn.fetchrow(f"SELECT {AGENT_COLUMNS} FROM agents WHERE agent_id = $1",
                              agent_id)
    if row is None:
        return None
    beats = await conn.fetch(agent_history_sql("$1", "$2", "$3"), agent_id, since, until)
    return AgentHistory(agent_row(row), [kept_beat(beat) for beat in beats])


# Every figure of /stats in one statement: one round trip and one snapshot. `json` (not
# `jsonb`) keeps the order the top hosts and rules were aggregated in.
STATS_SQL = """
SELECT (SELECT count(*) FROM signals WHERE ts >= $1),
       (SELECT coalesce(json_agg(json_build_array(severity, status, n)), '[]')
          FROM signal_counts WHERE n > 0),
       (SELECT coalesce(json_object_agg(host_id, n ORDER BY n DESC, host_id), '{}')
          FROM (SELECT host_id, n FROM host_counts WHERE n > 0
                ORDER BY n DESC, host_id LIMIT 10) AS top),
       (SELECT coalesce(json_object_agg(rule_id, n ORDER BY n DESC, rule_id), '{}')
          FROM (SELECT rule_id, n FROM rule_counts WHERE n > 0
                ORDER BY n DESC, rule_id LIMIT 10) AS top),
       (SELECT coalesce(json_object_agg(status, n), '{}')
          FROM (SELECT status, count(*) AS n FROM agents GROUP BY status) AS per_status),
       (SELECT coalesce(json_object_agg(severity, n), '{}')
          FROM (SELECT severity, sum(n)::bigint AS n FROM silence_counts
                WHERE status = 'open' GROUP BY severity) AS per_severity)"""


async def stats(conn: asyncpg.Connection, now_ns: int) -> dict[str, Any]:
    last_24h, by_severity_status, by_host, top_rules, agents, silenced_open = \
        await conn.fetchrow(STATS_SQL, timeutil.format_utc(now_ns - DAY_NS))
    return stats_document(last_24h=last_24h, by_severity_status=orjson.loads(by_severity_status),
                          silenced_open=orjson.loads(silenced_open), by_host=orjson.loads(by_host),
                          top_rules=orjson.loads(top_rules), agents=orjson.loads(agents))


async def signal_volume(conn: asyncpg.Connection, since: str, until: str,
                        bucket_seconds: int) -> dict[int, dict[str, int]]:
    # Stored times are fixed-width UTC, so the first 19 characters are whole seconds; the
    # double modulo floors times before 1970 too.
    rows = await conn.fetch(
        "SELECT second - ((second % $1) + $1) % $1 AS start, severity, count(*) "
        "FROM (SELECT extract(epoch FROM substr(ts, 1, 19)::timestamp)::bigint AS second, "
        "      severity FROM signals WHERE ts >= $2 AND ts < $3) AS t "
        "GROUP BY start, severity", bucket_seconds, since, until)
    volume: dict[int, dict[str, int]] = {}
    for start, severity, count in rows:
        volume.setdefault(start, {})[severity] = count
    return volume


async def first_signal_ts(conn: asyncpg.Connection, not_before: str | None) -> str | None:
    return await conn.fetchval("SELECT min(ts) FROM signals WHERE ts >= $1", not_before or "")


# -- forwarding ------------------------------------------------------------------------------
#
# Sequence numbers are handed out at insert, but transactions commit in any order: a signal
# with a lower `seq` can become visible after a higher one was shipped, so "everything up to
# seq N" is no safe position. Signals are taken instead in the order of the transaction that
# stored them (`txid`, then `seq`), and only from transactions older than the oldest one still
# running (the snapshot's xmin): nothing can commit among those any more, so a position
# there never passes over a signal still to come. A transaction running when the forwarder
# looks only delays what comes after it until it ends.

def encode_position(txid: int, seq: int) -> str:
    """Fixed-width text, so that comparing two positions as strings compares them in order."""
    return f"{txid:020d}:{seq:020d}"


def decode_position(position: str) -> tuple[int, int]:
    txid, seq = position.split(":")
    return int(txid), int(seq)


START_POSITION = encode_position(0, 0)


async def forward_position(conn: asyncpg.Connection) -> str:
    position = await conn.fetchval("SELECT value FROM meta WHERE key = $1",
                                   FORWARD_POSITION_KEY)
    return position or START_POSITION


async def unshipped(conn: asyncpg.Connection, limit: int,
                    after: ForwardPosition | None = None) -> ForwardBatch:
    """Run in one REPEATABLE READ transaction: the horizon and the rows are of one snapshot."""
    start = await forward_position(conn) if after is None else str(after)
    horizon = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    rows = await conn.fetch(
        f"SELECT {SIGNAL_COLUMNS}, seq, txid, EXISTS (SELECT 1 FROM shipped "
        "WHERE shipped.signal_id = signals.signal_id) AS is_shipped "
        "FROM signals WHERE (txid, seq) > ($1, $2) AND txid < $3 ORDER BY txid, seq LIMIT $4",
        *decode_position(start), horizon, limit)
    positions = [encode_position(row["txid"], row["seq"]) for row in rows]
    pending = [(row, position) for row, position in zip(rows, positions, strict=True)
               if not row["is_shipped"]]
    return ForwardBatch([signal_row(row) for row, _ in pending],
                        [position for _, position in pending], start,
                        positions[-1] if positions else start, len(rows) == limit)


async def forward_backlog(conn: asyncpg.Connection, severities: tuple[str, ...],
                          include_silenced: bool) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM signals WHERE (txid, seq) > ($1, $2) "
        "AND severity = ANY($3::text[]) "
        + ("" if include_silenced else "AND silence_id IS NULL ")
        + "AND NOT EXISTS (SELECT 1 FROM shipped WHERE shipped.signal_id = signals.signal_id)",
        *decode_position(await forward_position(conn)), list(severities))


# -- silences --------------------------------------------------------------------------------

def open_matching(matchers: Matchers, p: Params) -> str:
    """The WHERE terms of the open signals a silence's matchers match."""
    where = ["status = 'open'"]
    for column in ("rule_id", "host_id", "severity"):
        if (value := getattr(matchers, column)) is not None:
            where.append(f"{column} = {p(value)}")
    if matchers.title is not None:
        # Titles compare bytewise (COLLATE "C"): LIKE is as case-sensitive as the glob.
        where.append(f"title LIKE {p(glob_like_pattern(matchers.title))}"
                     if matchers.title_is_glob else f"title = {p(matchers.title)}")
    return " AND ".join(where)


async def count_open_matching(conn: asyncpg.Connection, matchers: Matchers) -> int:
    p = Params()
    return await conn.fetchval(f"SELECT count(*) FROM signals WHERE {open_matching(matchers, p)}",
                               *p.values)


async def list_silences(conn: asyncpg.Connection, active_at: str | None,
                        limit: int) -> list[Silence]:
    where = "WHERE expired_at IS NULL AND ends_at > $2 AND created_at <= $2 " if active_at else ""
    rows = await conn.fetch(f"SELECT {SILENCE_COLUMNS} FROM silences {where}ORDER BY id DESC "
                            "LIMIT $1", limit, *([active_at] if active_at else []))
    return [silence_row(row) for row in rows]


async def silences_version(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", SILENCES_VERSION_KEY)
    return int(value) if value else 0


# -- background jobs -------------------------------------------------------------------------

async def job_records(conn: asyncpg.Connection) -> dict[str, JobRecord]:
    rows = await conn.fetch("SELECT key, value FROM meta WHERE key >= $1 AND key < $2",
                            JOB_KEY_PREFIX, JOB_KEYS_END)
    return {(record := job_record(key, value)).last.job_id: record for key, value in rows}


# -- console sessions ------------------------------------------------------------------------

async def get_session(conn: asyncpg.Connection, token_hash: bytes,
                      now: str) -> ConsoleSession | None:
    row = await conn.fetchrow("SELECT token_hash, actor, created_at, expires_at, role, key_id "
                              "FROM sessions WHERE token_hash = $1 AND expires_at > $2",
                              token_hash, now)
    return ConsoleSession(*row) if row else None


# -- agent connection problems ---------------------------------------------------------------

async def connection_problems(conn: asyncpg.Connection, since: str,
                              limit: int) -> list[dict[str, Any]]:
    return [problem_row(row) for row in await conn.fetch(
        connection_problems_sql(since="$1", limit="$2"), since, limit)]


# -- keys ------------------------------------------------------------------------------------

async def keys_version(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", KEYS_VERSION_KEY)
    return int(value) if value else 0


async def valid_keys(conn: asyncpg.Connection,
                     now: str) -> tuple[list[AgentKey], list[AnalystKey]]:
    agents = await conn.fetch(
        f"SELECT {AGENT_KEY_COLUMNS} FROM agent_keys WHERE revoked_at IS NULL AND "
        "(expires_at IS NULL OR expires_at > $1)", now)
    people = await conn.fetch(f"SELECT {ANALYST_KEY_COLUMNS} FROM analyst_keys "
                              "WHERE revoked_at IS NULL")
    return [agent_key(row) for row in agents], [analyst_key(row) for row in people]


async def list_agent_keys(conn: asyncpg.Connection, host_id: str | None,
                          limit: int | None) -> list[AgentKey]:
    rows = await conn.fetch(f"SELECT {AGENT_KEY_COLUMNS} FROM agent_keys "
                            "WHERE $1::text IS NULL OR host_id = $1 "
                            "ORDER BY created_at DESC, key_id LIMIT $2", host_id, limit)
    return [agent_key(row) for row in rows]


async def list_analyst_keys(conn: asyncpg.Connection) -> list[AnalystKey]:
    rows = await conn.fetch(f"SELECT {ANALYST_KEY_COLUMNS} FROM analyst_keys "
                            "ORDER BY created_at DESC, key_id")
    return [analyst_key(row) for row in rows]


async def known_agents(conn: asyncpg.Connection, agent_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT agent_id FROM agents WHERE agent_id = ANY($1::text[]) UNION "
        "SELECT host_id FROM host_counts WHERE n > 0 AND host_id = ANY($1::text[])",
        list(dict.fromkeys(agent_ids)))
    return {row[0] for row in rows}
