"""Every read of the SQLite store, on a reader connection (which under WAL never waits for the
writer)."""

from __future__ import annotations

from typing import Any

import aiosqlite

from ... import timeutil
from ..base import (
    AgentFilter,
    AgentHistory,
    AgentKey,
    AnalystKey,
    ConsoleSession,
    ForwardBatch,
    ForwardPosition,
    SignalFilter,
    SignalPage,
)
from ..common import (
    AGENT_COLUMNS,
    AGENT_KEY_COLUMNS,
    ANALYST_KEY_COLUMNS,
    DAY_NS,
    FORWARD_POSITION_KEY,
    KEYS_VERSION_KEY,
    SEQ,
    SIGNAL_COLUMNS,
    agent_history_sql,
    agent_key,
    agent_row,
    analyst_key,
    connection_problems_sql,
    decode_cursor,
    encode_cursor,
    kept_beat,
    like_pattern,
    problem_row,
    signal_row,
    stats_document,
)
from .writes import chunks, placeholders

SEARCH_BY_RULE_MAX_ROWS = 20_000  # fewer matches than this: read them through the rule index
SEARCH_MAX_TITLES = 500  # beyond this many matching titles, search filters while it walks


# -- signals ---------------------------------------------------------------------------------

async def list_signals(conn: aiosqlite.Connection, query: SignalFilter) -> SignalPage:
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
    search_by_rule = False
    if query.search:
        pattern = like_pattern(query.search)
        like = "(title LIKE ? ESCAPE '\\' OR rule_id LIKE ? ESCAPE '\\')"
        pairs = await _matching_titles(conn, pattern)
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
    if query.cursor:
        ts, seq = decode_cursor(query.cursor)
        # `ts <= ?` bounds the index range; the OR then skips the rows already returned.
        where.append("ts <= ? AND (ts < ? OR seq < ?)")
        params.extend((ts, ts, seq))
    sql = (f"SELECT {SIGNAL_COLUMNS}, seq FROM signals "
           f"INDEXED BY {_index_for(query, search_by_rule)}"
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
    return stats_document(last_24h=last_24h, by_severity_status=by_severity_status,
                          by_host=by_host, top_rules=top_rules, agents=agents)


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


async def forward_backlog(conn: aiosqlite.Connection, severities: tuple[str, ...]) -> int:
    position = await forward_position(conn)
    async with conn.execute(
            "SELECT count(*) FROM signals WHERE seq > ? AND severity IN "
            f"({placeholders(len(severities))}) AND NOT EXISTS (SELECT 1 FROM shipped "
            "WHERE shipped.signal_id = signals.signal_id)", (position, *severities)) as cur:
        (count,) = await cur.fetchone()
    return count


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
