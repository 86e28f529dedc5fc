"""Every read of the PostgreSQL store, on a pooled connection."""

from __future__ import annotations

from typing import Any

import asyncpg

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

SEARCH_MAX_TITLES = 500  # beyond this many matching titles, search filters while it walks


class Params:
    """Numbered query parameters ($1, $2, ...) collected while a query is put together."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# -- signals ---------------------------------------------------------------------------------

async def list_signals(conn: asyncpg.Connection, query: SignalFilter) -> SignalPage:
    where: list[str] = []
    p = Params()
    if query.status is not None:
        where.append(f"status = {p(query.status)}")
    if query.severities:
        where.append(f"severity = ANY({p(list(query.severities))}::text[])")
    if query.host_id:
        where.append(f"host_id = {p(query.host_id)}")
    if query.rule_id:
        where.append(f"rule_id = {p(query.rule_id)}")
    if query.search:
        pattern = like_pattern(query.search)
        pairs = await _matching_titles(conn, pattern)
        if not pairs:
            return SignalPage([], None)
        like = f"(title ILIKE {p(pattern)} OR rule_id ILIKE {p(pattern)})"
        if len(pairs) > SEARCH_MAX_TITLES:
            # A broad search matches most signals: a newest-first walk finds a page fast.
            where.append(like)
        else:
            # The few matching (rule, title) pairs lead to the signals through the rule index.
            rules = sorted({rule for rule, _ in pairs})
            titles = sorted({title for _, title in pairs})
            where.append(f"rule_id = ANY({p(rules)}::text[]) AND "
                         f"title = ANY({p(titles)}::text[]) AND {like}")
    if query.since:
        where.append(f"ts >= {p(query.since)}")
    if query.until:
        where.append(f"ts < {p(query.until)}")
    if query.cursor:
        ts, seq = decode_cursor(query.cursor)
        where.append(f"(ts, seq) < ({p(ts)}, {p(seq)})")
    sql = (f"SELECT {SIGNAL_COLUMNS}, seq FROM signals"
           + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY ts DESC, seq DESC LIMIT {p(query.limit + 1)}")
    rows = await conn.fetch(sql, *p.values)
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(last[1], last[SEQ])
        rows = rows[:query.limit]
    return SignalPage([signal_row(row) for row in rows], next_cursor)


async def _matching_titles(conn: asyncpg.Connection, pattern: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT rule_id, title FROM signal_titles WHERE n > 0 AND (title ILIKE $1 OR "
        "rule_id ILIKE $1) LIMIT $2", pattern, SEARCH_MAX_TITLES + 1)
    return [(row[0], row[1]) for row in rows]


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


async def stats(conn: asyncpg.Connection, now_ns: int) -> dict[str, Any]:
    last_24h = await conn.fetchval("SELECT count(*) FROM signals WHERE ts >= $1",
                                   timeutil.format_utc(now_ns - DAY_NS))
    by_severity_status = await conn.fetch(
        "SELECT severity, status, n FROM signal_counts WHERE n > 0")
    by_host = dict(await conn.fetch("SELECT host_id, n FROM host_counts WHERE n > 0 "
                                    "ORDER BY n DESC, host_id LIMIT 10"))
    top_rules = dict(await conn.fetch("SELECT rule_id, n FROM rule_counts WHERE n > 0 "
                                      "ORDER BY n DESC, rule_id LIMIT 10"))
    agents = dict(await conn.fetch("SELECT status, count(*) FROM agents GROUP BY status"))
    return stats_document(last_24h=last_24h, by_severity_status=by_severity_status,
                          by_host=by_host, top_rules=top_rules, agents=agents)


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


async def forward_backlog(conn: asyncpg.Connection, severities: tuple[str, ...]) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM signals WHERE (txid, seq) > ($1, $2) "
        "AND severity = ANY($3::text[]) AND NOT EXISTS (SELECT 1 FROM shipped "
        "WHERE shipped.signal_id = signals.signal_id)",
        *decode_position(await forward_position(conn)), list(severities))


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
