"""Every read of the SQLite store, on a reader connection (which under WAL never waits for the
writer)."""

from __future__ import annotations

from typing import Any

import aiosqlite

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
    group_page,
    job_record,
    kept_beat,
    like_pattern,
    problem_row,
    signal_row,
    silence_row,
    stats_document,
)
from .writes import chunks, open_matching_query, placeholders

SEARCH_BY_RULE_MAX_ROWS = 20_000  # fewer matches than this: read them through the rule index


# -- signals ---------------------------------------------------------------------------------

async def _conditions(conn: aiosqlite.Connection,
                      query: SignalFilter) -> tuple[list[str], list[Any], str] | None:
    """The WHERE terms of a filter, their parameters and the index to read it through; None
    when a search matches no title at all."""
    where: list[str] = []
    params: list[Any] = []
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    if query.severities:
        where.append(f"severity IN ({placeholders(len(query.severities))})")
        params.extend(query.severities)
    if query.host_id:
        where.append("host_id = ?")
        params.append(query.host_id)
    if query.rule_id:
        where.append("rule_id = ?")
        params.append(query.rule_id)
    if query.silenced is not None:
        where.append(f"silence_id IS {'NOT ' if query.silenced else ''}NULL")
    search_by_rule = False
    if query.search:
        pattern = like_pattern(query.search)
        like = "(title LIKE ? ESCAPE '\\' OR rule_id LIKE ? ESCAPE '\\')"
        pairs = await _matching_titles(conn, pattern)
        if not pairs:
            return None
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
            # The rule index carries status and severity: it answers a filtered search, or
            # one with few matches, without reading rows. A broad unfiltered one walks newest
            # first instead and stops at a page.
            search_by_rule = (query.status is not None or query.severities is not None
                              or sum(n for *_, n in pairs) <= SEARCH_BY_RULE_MAX_ROWS)
    if query.since:
        where.append("ts >= ?")
        params.append(query.since)
    if query.until:
        where.append("ts < ?")
        params.append(query.until)
    return where, params, _index_for(query, search_by_rule)


async def list_signals(conn: aiosqlite.Connection, query: SignalFilter) -> SignalPage:
    conditions = await _conditions(conn, query)
    if conditions is None:
        return SignalPage([], None)
    where, params, index = conditions
    if query.cursor:
        ts, seq = decode_cursor(query.cursor)
        # `ts <= ?` bounds the index range; the OR then skips the rows already returned.
        where.append("ts <= ? AND (ts < ? OR seq < ?)")
        params.extend((ts, ts, seq))
    sql = (f"SELECT {SIGNAL_COLUMNS}, seq FROM signals INDEXED BY {index}"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY ts DESC, seq DESC LIMIT ?")
    params.append(query.limit + 1)
    async with conn.execute(sql, params) as cur:
        rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(last[1], last[SEQ])
        rows = rows[:query.limit]
    return SignalPage([signal_row(row) for row in rows], next_cursor)


async def matching_ids(conn: aiosqlite.Connection, query: SignalFilter, not_status: str,
                       max_seq: int, limit: int) -> list[str]:
    """Up to `limit` signals that match `query`, are not in `not_status` and were stored at
    or before `max_seq`: the next chunk of a triage by filter. Signals it changes leave the
    match, so the next call finds the next ones."""
    conditions = await _conditions(conn, query)
    if conditions is None:
        return []
    where, params, index = conditions
    others = [status for status in STATUSES if status != not_status]
    where += [f"status IN ({placeholders(len(others))})", "seq <= ?"]
    params += [*others, max_seq, limit]
    if query.rule_id and query.host_id:
        index = "idx_signals_group"  # a group, without stepping over what is already done
    async with conn.execute(f"SELECT signal_id FROM signals INDEXED BY {index} WHERE "
                            + " AND ".join(where) + " LIMIT ?", params) as cur:
        return [row[0] for row in await cur.fetchall()]


async def max_seq(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT max(seq) FROM signals") as cur:
        (seq,) = await cur.fetchone()
    return seq or 0


# -- groups of repeats (common.group_page) -----------------------------------------------------

BUCKET_COLUMNS = "rule_id, host_id, status, severity, silence_id, n, first_ts, last_ts"
GROUPS_PER_QUERY = 100  # groups fetched with one query of OR'ed keys


async def signal_groups(conn: aiosqlite.Connection, query: SignalFilter) -> GroupPage:
    """Two or three queries whatever the page size (under concurrency every round trip to a
    reader thread costs more than the SQL itself), in one read transaction: the groups a
    page names are the ones whose counts it shows, whatever triage does meanwhile."""
    await conn.execute("BEGIN")
    try:
        return await group_page(_GroupQueries(conn), query)
    finally:
        await conn.execute("COMMIT")


def _bucket_conditions(query: SignalFilter,
                       rules: list[str] | None) -> tuple[list[str], list[Any]]:
    where, params = ["last_ts IS NOT NULL"], []  # an emptied bucket has no times
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    if query.severities:
        where.append(f"severity IN ({placeholders(len(query.severities))})")
        params.extend(query.severities)
    if query.silenced is not None:
        where.append("silence_id != 0" if query.silenced else "silence_id = 0")
    if query.host_id:
        where.append("host_id = ?")
        params.append(query.host_id)
    for_rules = [query.rule_id] if query.rule_id else rules
    if for_rules:
        where.append(f"rule_id IN ({placeholders(len(for_rules))})")
        params.extend(for_rules)
    return where, params


def _either_key(keys: list[GroupKey]) -> tuple[str, list[str]]:
    return (" OR ".join(["(rule_id = ? AND host_id = ?)"] * len(keys)),
            [v for _, rule, host in keys for v in (rule, host)])


class _GroupQueries:
    """The SQL of common.GroupSource for SQLite, on one reader in a read transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _rows(self, sql: str, params: list[Any]) -> list[Any]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def matching_titles(self, pattern: str) -> list[tuple[str, str]]:
        return [(rule, title) for rule, title, _ in await _matching_titles(self._conn, pattern)]

    async def titles_per_rule(self, rules: list[str]) -> dict[str, int]:
        return dict(await self._rows(
            "SELECT rule_id, count(*) FROM signal_titles WHERE n > 0 AND rule_id IN "
            f"({placeholders(len(rules))}) GROUP BY rule_id", rules))

    async def share_of(self, rules: list[str]) -> float:
        ((part, total),) = await self._rows(
            "SELECT (SELECT coalesce(sum(n), 0) FROM rule_counts WHERE rule_id IN "
            f"({placeholders(len(rules))})), (SELECT coalesce(sum(n), 0) FROM rule_counts)",
            rules)
        return part / total if total else 1.0

    async def sorted_groups(self, query: SignalFilter, rules: list[str] | None,
                            after: GroupKey | None) -> list[GroupKey]:
        where, params = _bucket_conditions(query, rules)
        # Not the walk index: the host's, or the primary key (which starts with the rule).
        index = "INDEXED BY idx_group_counts_host" if query.host_id else "NOT INDEXED"
        rows = await self._rows(
            f"SELECT max(last_ts), rule_id, host_id FROM group_counts {index} WHERE "
            + " AND ".join(where) + " GROUP BY rule_id, host_id"
            + (" HAVING (max(last_ts), rule_id, host_id) < (?, ?, ?)" if after else "")
            + " ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT ?",
            [*params, *(after or ()), query.limit + 1])
        return [tuple(row) for row in rows]

    async def walk(self, query: SignalFilter, rules: list[str] | None, after: GroupKey | None,
                   below: GroupKey, batch: int) -> list[Any]:
        """The buckets of each status newest first, merged."""
        where, params = _bucket_conditions(query, rules)
        statuses = [query.status] if query.status else list(STATUSES)
        arm_where = [*where, "(last_ts, rule_id, host_id) < (?, ?, ?)"]
        if not query.status:
            arm_where.append("status = ?")
        newest = (f", (SELECT max(last_ts) FROM group_counts AS g2 WHERE g2.rule_id = "
                  f"g.rule_id AND g2.host_id = g.host_id AND {' AND '.join(where)})"
                  if after else "")
        arm = (f"SELECT last_ts, rule_id, host_id{newest} FROM group_counts AS g INDEXED BY "
               f"idx_group_counts_walk WHERE {' AND '.join(arm_where)}")
        sql_params: list[Any] = []
        for status in statuses:
            sql_params += [*(params * 2 if after else params), *below]
            if not query.status:
                sql_params.append(status)
        return await self._rows(" UNION ALL ".join([arm] * len(statuses))
                                + " ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT ?",
                                [*sql_params, batch])

    async def buckets(self, query: SignalFilter, rules: list[str] | None,
                      keys: list[GroupKey]) -> list[Any]:
        where, params = _bucket_conditions(query, rules)
        rows: list[Any] = []
        for chunk in chunks(keys, GROUPS_PER_QUERY):
            either, key_params = _either_key(chunk)
            rows += await self._rows(
                f"SELECT {BUCKET_COLUMNS}, (SELECT signal_id FROM signals INDEXED BY "
                "idx_signals_group WHERE rule_id = g.rule_id AND host_id = g.host_id AND "
                "status = g.status AND severity = g.severity AND silence_id IS "
                "nullif(g.silence_id, 0) AND ts = g.last_ts LIMIT 1) "
                f"FROM group_counts AS g WHERE ({either}) AND " + " AND ".join(where),
                [*key_params, *params])
        return rows

    async def newest_signals(self, query: SignalFilter, count: int) -> list[Any]:
        where, params = await self._plain_conditions(query)
        clause = " WHERE " + " AND ".join(where) if where else ""
        return await self._rows(f"SELECT ts, rule_id, host_id FROM signals INDEXED BY "
                                f"idx_signals_ts{clause} ORDER BY ts DESC LIMIT ?",
                                [*params, count])

    async def window_buckets(self, query: SignalFilter, keys: list[GroupKey]) -> list[Any]:
        where, params = await self._plain_conditions(query)
        rows: list[Any] = []
        for chunk in chunks(keys, GROUPS_PER_QUERY):
            either, key_params = _either_key(chunk)
            rows += await self._rows(
                "SELECT rule_id, host_id, status, severity, coalesce(silence_id, 0), n, "
                "first_ts, last_ts, (SELECT signal_id FROM signals INDEXED BY "
                "idx_signals_group WHERE rule_id = b.rule_id AND host_id = b.host_id AND "
                "status = b.status AND severity = b.severity AND silence_id IS b.silence_id "
                "AND ts = b.last_ts LIMIT 1) FROM (SELECT rule_id, host_id, status, "
                "severity, silence_id, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts "
                f"FROM signals INDEXED BY idx_signals_group WHERE ({either})"
                + "".join(f" AND {term}" for term in where)
                + " GROUP BY rule_id, host_id, status, severity, silence_id) AS b",
                [*key_params, *params])
        return rows

    async def _plain_conditions(self, query: SignalFilter) -> tuple[list[str], list[Any]]:
        conditions = await _conditions(self._conn, query)
        assert conditions is not None  # no search: every filter is a plain condition
        return conditions[0], conditions[1]

    async def grouped_signals(self, query: SignalFilter,
                              after: GroupKey | None) -> list[Any] | None:
        conditions = await _conditions(self._conn, query)
        if conditions is None:
            return None
        where, params, index = conditions
        if not (query.search or query.host_id or query.rule_id):
            # The time index carries every column a group needs: no row is read.
            index = "idx_signals_ts"
        # What the filter already fixes is not counted row by row.
        by_status = ", ".join(f"sum(status = '{status}')" if query.status is None
                              else str(int(status == query.status)) + " * count(*)"
                              for status in STATUSES)
        silenced = {None: "sum(silence_id IS NOT NULL)", True: "count(*)", False: "0"}[
            query.silenced]
        inner = (f"SELECT max(ts) AS last, rule_id, host_id, count(*) AS n, min(ts) AS first, "
                 f"max({SEVERITY_RANK_SQL}) AS top, {by_status}, "
                 f"{silenced} AS silenced "
                 f"FROM signals INDEXED BY {index}"
                 + (" WHERE " + " AND ".join(where) if where else "")
                 + " GROUP BY rule_id, host_id"
                 + (" HAVING (max(ts), rule_id, host_id) < (?, ?, ?)" if after else "")
                 + " ORDER BY 1 DESC, 2 DESC, 3 DESC LIMIT ?")
        # The newest matching signal of each group on the page: one seek by host and time.
        sample = ("(SELECT signal_id FROM signals INDEXED BY idx_signals_host_ts WHERE "
                  "host_id = page.host_id AND ts = page.last AND rule_id = page.rule_id"
                  + "".join(f" AND {term}" for term in where) + " LIMIT 1)")
        return await self._rows(f"SELECT page.*, {sample} FROM ({inner}) AS page",
                                [*params, *params, *(after or ()), query.limit + 1])


async def _matching_titles(conn: aiosqlite.Connection, pattern: str) -> list[tuple[str, str, int]]:
    async with conn.execute(
            "SELECT rule_id, title, n FROM signal_titles WHERE n > 0 AND (title LIKE ? "
            "ESCAPE '\\' OR rule_id LIKE ? ESCAPE '\\') LIMIT ?",
            (pattern, pattern, SEARCH_MAX_TITLES + 1)) as cur:
        return [tuple(row) for row in await cur.fetchall()]


def _index_for(query: SignalFilter, search_by_rule: bool) -> str:
    """The index a page of signals is read through, named rather than left to the planner.

    Every index ends in ts (then seq), so each serves the newest-first order; the narrowest
    filter picks it, and status and severity ride inside the host, rule and status indexes.
    Planner statistics misled here: sampled ones called a status as rare as a host, full
    ones made 2 % acknowledged look like a third of the table and walked the ts index.
    """
    if query.host_id:
        return "idx_signals_host_ts"
    if query.rule_id or search_by_rule:
        return "idx_signals_rule_ts"
    if query.status is not None:
        return "idx_signals_status_ts"
    return "idx_signals_ts"


async def get_signal(conn: aiosqlite.Connection, signal_id: str) -> dict[str, Any] | None:
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
    signal["shipped_at"] = row[SEQ]
    signal["history"] = history
    signal["silence"] = None
    if signal["silence_id"] is not None:
        async with conn.execute(f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = ?",
                                (signal["silence_id"],)) as cur:
            found = await cur.fetchone()
        signal["silence"] = silence_row(found) if found else None
    return signal


async def list_agents(conn: aiosqlite.Connection, query: AgentFilter) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    if query.since:
        where.append("last_seen >= ?")
        params.append(query.since)
    sql = (f"SELECT {AGENT_COLUMNS} FROM agents"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY status = 'stale' DESC, last_seen DESC, agent_id LIMIT ?")
    params.append(query.limit)
    async with conn.execute(sql, params) as cur:
        return [agent_row(row) for row in await cur.fetchall()]


async def agent_history(conn: aiosqlite.Connection, agent_id: str, since: str,
                        until: str) -> AgentHistory | None:
    async with conn.execute(f"SELECT {AGENT_COLUMNS} FROM agents WHERE agent_id = ?",
                            (agent_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    async with conn.execute(agent_history_sql("?1", "?2", "?3"),
                            (agent_id, since, until)) as cur:
        return AgentHistory(agent_row(row), [kept_beat(kept) for kept in await cur.fetchall()])


async def stats(conn: aiosqlite.Connection, now_ns: int) -> dict[str, Any]:
    async def rows(sql: str, *params: Any) -> list[Any]:
        async with conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    ((last_24h,),) = await rows("SELECT count(*) FROM signals WHERE ts >= ?",
                                timeutil.format_utc(now_ns - DAY_NS))
    by_severity_status = await rows("SELECT severity, status, n FROM signal_counts WHERE n > 0")
    by_host = dict(await rows("SELECT host_id, n FROM host_counts WHERE n > 0 "
                              "ORDER BY n DESC, host_id LIMIT 10"))
    top_rules = dict(await rows("SELECT rule_id, n FROM rule_counts WHERE n > 0 "
                                "ORDER BY n DESC, rule_id LIMIT 10"))
    agents = dict(await rows("SELECT status, count(*) FROM agents GROUP BY status"))
    silenced_open = dict(await rows("SELECT severity, sum(n) FROM silence_counts "
                                    "WHERE status = 'open' GROUP BY severity"))
    return stats_document(last_24h=last_24h, by_severity_status=by_severity_status,
                          silenced_open=silenced_open, by_host=by_host, top_rules=top_rules,
                          agents=agents)


async def signal_volume(conn: aiosqlite.Connection, since: str, until: str,
                        bucket_seconds: int) -> dict[int, dict[str, int]]:
    # Stored times are fixed-width UTC, so the first 19 characters are whole seconds. SQL's
    # % keeps the dividend's sign: the double modulo floors times before 1970 too.
    second = "CAST(strftime('%s', substr(ts, 1, 19)) AS INTEGER)"
    sql = (f"SELECT {second} - (({second} % ?1) + ?1) % ?1 AS start, severity, count(*) "
           "FROM signals WHERE ts >= ?2 AND ts < ?3 GROUP BY start, severity")
    volume: dict[int, dict[str, int]] = {}
    async with conn.execute(sql, (bucket_seconds, since, until)) as cur:
        for start, severity, count in await cur.fetchall():
            volume.setdefault(start, {})[severity] = count
    return volume


async def first_signal_ts(conn: aiosqlite.Connection, not_before: str | None) -> str | None:
    async with conn.execute("SELECT min(ts) FROM signals WHERE ts >= ?",
                            (not_before or "",)) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


# -- forwarding ------------------------------------------------------------------------------

async def forward_position(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT value FROM meta WHERE key = ?",
                            (FORWARD_POSITION_KEY,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def unshipped(conn: aiosqlite.Connection, limit: int,
                    after: ForwardPosition | None = None) -> ForwardBatch:
    start = await forward_position(conn) if after is None else int(after)
    async with conn.execute(
            f"SELECT {SIGNAL_COLUMNS}, seq, EXISTS (SELECT 1 FROM shipped "
            "WHERE shipped.signal_id = signals.signal_id) AS is_shipped "
            "FROM signals WHERE seq > ? ORDER BY seq LIMIT ?", (start, limit)) as cur:
        rows = await cur.fetchall()
    pending = [row for row in rows if not row[SEQ + 1]]
    return ForwardBatch([signal_row(row) for row in pending], [row[SEQ] for row in pending],
                        start, rows[-1][SEQ] if rows else start, len(rows) == limit)


async def forward_backlog(conn: aiosqlite.Connection, severities: tuple[str, ...],
                          include_silenced: bool) -> int:
    position = await forward_position(conn)
    async with conn.execute(
            "SELECT count(*) FROM signals WHERE seq > ? AND severity IN "
            f"({placeholders(len(severities))}) "
            + ("" if include_silenced else "AND silence_id IS NULL ")
            + "AND NOT EXISTS (SELECT 1 FROM shipped WHERE shipped.signal_id = "
            "signals.signal_id)", (position, *severities)) as cur:
        (count,) = await cur.fetchone()
    return count


# -- silences --------------------------------------------------------------------------------

async def list_silences(conn: aiosqlite.Connection, active_at: str | None,
                        limit: int) -> list[Silence]:
    where = ("WHERE expired_at IS NULL AND ends_at > ?1 AND created_at <= ?1 "
             if active_at else "")
    async with conn.execute(f"SELECT {SILENCE_COLUMNS} FROM silences {where}ORDER BY id DESC "
                            f"LIMIT {int(limit)}", (active_at,) if active_at else ()) as cur:
        return [silence_row(row) for row in await cur.fetchall()]


async def count_open_matching(conn: aiosqlite.Connection, matchers: Matchers) -> int:
    sql, params = open_matching_query(matchers)
    async with conn.execute(sql, params) as cur:
        return sum(1 for _, title in await cur.fetchall() if matchers.title_matches(title))


async def silences_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT value FROM meta WHERE key = ?",
                            (SILENCES_VERSION_KEY,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


# -- background jobs -------------------------------------------------------------------------

async def job_records(conn: aiosqlite.Connection) -> dict[str, JobRecord]:
    async with conn.execute("SELECT key, value FROM meta WHERE key >= ? AND key < ?",
                            (JOB_KEY_PREFIX, JOB_KEYS_END)) as cur:
        rows = await cur.fetchall()
    return {(record := job_record(key, value)).last.job_id: record for key, value in rows}


# -- console sessions ------------------------------------------------------------------------

async def get_session(conn: aiosqlite.Connection, token_hash: bytes,
                      now: str) -> ConsoleSession | None:
    async with conn.execute("SELECT token_hash, actor, created_at, expires_at, role, key_id "
                            "FROM sessions WHERE token_hash = ? AND expires_at > ?",
                            (token_hash, now)) as cur:
        row = await cur.fetchone()
    return ConsoleSession(*row) if row else None


# -- agent connection problems ---------------------------------------------------------------

async def connection_problems(conn: aiosqlite.Connection, since: str,
                              limit: int) -> list[dict[str, Any]]:
    async with conn.execute(connection_problems_sql(since="?", limit="?"),
                            (since, limit)) as cur:
        return [problem_row(row) for row in await cur.fetchall()]


# -- keys ------------------------------------------------------------------------------------

async def keys_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT value FROM meta WHERE key = ?", (KEYS_VERSION_KEY,)) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def valid_keys(conn: aiosqlite.Connection,
                     now: str) -> tuple[list[AgentKey], list[AnalystKey]]:
    async with conn.execute(
            f"SELECT {AGENT_KEY_COLUMNS} FROM agent_keys WHERE revoked_at IS NULL AND "
            "(expires_at IS NULL OR expires_at > ?)", (now,)) as cur:
        agents = [agent_key(row) for row in await cur.fetchall()]
    async with conn.execute(f"SELECT {ANALYST_KEY_COLUMNS} FROM analyst_keys "
                            "WHERE revoked_at IS NULL") as cur:
        people = [analyst_key(row) for row in await cur.fetchall()]
    return agents, people


async def list_agent_keys(conn: aiosqlite.Connection, host_id: str | None,
                          limit: int | None) -> list[AgentKey]:
    where, params = ("WHERE host_id = ?", [host_id]) if host_id is not None else ("", [])
    async with conn.execute(f"SELECT {AGENT_KEY_COLUMNS} FROM agent_keys {where} "
                            "ORDER BY created_at DESC, key_id LIMIT ?",
                            [*params, -1 if limit is None else limit]) as cur:
        return [agent_key(row) for row in await cur.fetchall()]


async def list_analyst_keys(conn: aiosqlite.Connection) -> list[AnalystKey]:
    async with conn.execute(f"SELECT {ANALYST_KEY_COLUMNS} FROM analyst_keys "
                            "ORDER BY created_at DESC, key_id") as cur:
        return [analyst_key(row) for row in await cur.fetchall()]


async def known_agents(conn: aiosqlite.Connection, agent_ids: list[str]) -> set[str]:
    known: set[str] = set()
    for chunk in chunks(list(dict.fromkeys(agent_ids))):
        marks = placeholders(len(chunk))
        async with conn.execute(
                f"SELECT agent_id FROM agents WHERE agent_id IN ({marks}) UNION "
                f"SELECT host_id FROM host_counts WHERE n > 0 AND host_id IN ({marks})",
                chunk * 2) as cur:
            known.update(row[0] for row in await cur.fetchall())
    return known
