"""Every write of the PostgreSQL store; each runs inside a transaction the store opens.

Concurrent transactions are the normal case here (several processes, several instances), so
each write is written to be right under READ COMMITTED with others running: first write wins
through `ON CONFLICT DO NOTHING`, rows about to be changed are locked in a fixed order, and an
UPDATE re-checks its condition on the latest row version, so a concurrent check never marks an
agent stale twice.
"""

from __future__ import annotations

import asyncpg

from ...domain.agents import STALE_RULE_ID, SilentAgent, reconnection_note
from ...domain.signals import NEW_STATUS, SYSTEM_ACTOR, NewSignal
from ..base import (
    AlertBuilder,
    ConsoleSession,
    ForwardPosition,
    Heartbeat,
    JobRun,
    StatusResult,
)
from ..common import FORWARD_POSITION_KEY, JOB_KEY_PREFIX, job_record_value, probe_signal

# unnest() turns one array per column into rows: a whole batch is one statement with eleven
# parameters, however many signals it holds. ORDER BY keeps the batch's order in `seq`.
INSERT_SIGNALS = """
INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, context,
                     rule_description, received_at, status)
SELECT signal_id, ts, host_id, rule_id, severity, title, tags, context, rule_description,
       $10, $11
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[])
     WITH ORDINALITY AS batch (signal_id, ts, host_id, rule_id, severity, title, tags, context,
                               rule_description, n)
ORDER BY n
ON CONFLICT (signal_id) DO NOTHING
RETURNING signal_id"""


async def insert_new_signals(conn: asyncpg.Connection, signals: list[NewSignal],
                             now: str) -> set[str]:
    """Insert the signals whose id is not stored yet; returns the ids inserted."""
    if not signals:
        return set()
    rows = await conn.fetch(
        INSERT_SIGNALS,
        [s.signal_id for s in signals], [s.ts for s in signals], [s.host_id for s in signals],
        [s.rule_id for s in signals], [s.severity for s in signals],
        [s.title for s in signals], [s.tags_json.decode() for s in signals],
        [s.context_json.decode() for s in signals], [s.rule_description for s in signals],
        now, NEW_STATUS)
    return {row[0] for row in rows}


async def record_heartbeat(conn: asyncpg.Connection, hb: Heartbeat, now: str) -> None:
    await conn.execute(
        "INSERT INTO heartbeats (agent_id, timestamp, version, os_version, uptime_seconds, "
        "received_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        hb.agent_id, hb.timestamp, hb.version, hb.os_version, hb.uptime_seconds, now)
    # Locked, so a stale check marking the agent right now is either seen finished here (and
    # its alert gets the reconnection note) or waits for this heartbeat and finds it active.
    before = await conn.fetchrow(
        "SELECT status, last_seen FROM agents WHERE agent_id = $1 FOR UPDATE", hb.agent_id)
    await conn.execute(
        "INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, "
        "os_version, uptime_seconds, status, stale_since) "
        "VALUES ($1, $2, $2, $3, $4, $5, $6, 'active', NULL) "
        "ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen, "
        "last_timestamp = excluded.last_timestamp, version = excluded.version, "
        "os_version = excluded.os_version, uptime_seconds = excluded.uptime_seconds, "
        "status = 'active', stale_since = NULL",
        hb.agent_id, now, hb.timestamp, hb.version, hb.os_version, hb.uptime_seconds)
    if before is not None and before["status"] == "stale":
        await _note_reconnection(conn, hb.agent_id,
                                 reconnection_note(before["last_seen"], now), now)


async def _note_reconnection(conn: asyncpg.Connection, agent_id: str, note: str,
                             now: str) -> None:
    """The agent's unresolved stale alert keeps its status but records the reconnection:
    an analyst should still look at the gap."""
    alert = await conn.fetchrow(
        "SELECT signal_id, status FROM signals WHERE host_id = $1 AND rule_id = $2 AND "
        "status <> 'resolved' ORDER BY ts DESC LIMIT 1", agent_id, STALE_RULE_ID)
    if alert is not None:
        await _record_history(conn, [alert["signal_id"]], [alert["status"]], alert["status"],
                              now, note, SYSTEM_ACTOR)


async def _record_history(conn: asyncpg.Connection, signal_ids: list[str],
                          from_statuses: list[str], to_status: str, now: str,
                          note: str | None, actor: str) -> None:
    await conn.execute(
        "INSERT INTO signal_history (signal_id, from_status, to_status, changed_at, note, "
        "actor) SELECT signal_id, from_status, $3, $4, $5, $6 "
        "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS h (signal_id, from_status, n) "
        "ORDER BY n", signal_ids, from_statuses, to_status, now, note, actor)


async def set_status(conn: asyncpg.Connection, signal_ids: list[str], status: str,
                     note: str | None, actor: str, now: str) -> StatusResult:
    ids = list(dict.fromkeys(signal_ids))
    # Locked in id order: two bulk triages over the same signals cannot deadlock, and the
    # history records the status each one really changed.
    current = dict(await conn.fetch(
        "SELECT signal_id, status FROM signals WHERE signal_id = ANY($1::text[]) "
        "ORDER BY signal_id FOR UPDATE", ids))
    changed = [sid for sid in ids if sid in current and current[sid] != status]
    if changed:
        await conn.execute("UPDATE signals SET status = $1 WHERE signal_id = ANY($2::text[])",
                           status, changed)
    # A note on an unchanged status is still worth keeping in the history.
    recorded = [sid for sid in ids if sid in current and (current[sid] != status or note)]
    if recorded:
        await _record_history(conn, recorded, [current[sid] for sid in recorded], status, now,
                              note, actor)
    return StatusResult(updated=len(current),
                        not_found=[sid for sid in ids if sid not in current])


async def mark_stale(conn: asyncpg.Connection, cutoff: str, alert: AlertBuilder,
                     now: str) -> list[str]:
    # A concurrent check waits for this one's row locks, then re-reads the rows and finds
    # them stale: each silence is marked once, and its alert's id (one per silence) is
    # inserted once whatever happens.
    rows = await conn.fetch(
        "UPDATE agents SET status = 'stale', stale_since = $1 "
        "WHERE status = 'active' AND last_seen < $2 "
        "RETURNING agent_id, last_seen, last_timestamp, version, os_version, uptime_seconds",
        now, cutoff)
    silent = sorted((SilentAgent(*row) for row in rows), key=lambda agent: agent.agent_id)
    await insert_new_signals(conn, [alert(agent, now) for agent in silent], now)
    return [agent.agent_id for agent in silent]


async def prune_heartbeats(conn: asyncpg.Connection, cutoff: str, limit: int) -> int:
    result = await conn.execute(
        "DELETE FROM heartbeats h USING ("
        "  SELECT old.agent_id, old.timestamp FROM heartbeats old"
        "  WHERE old.received_at < $1 AND EXISTS ("
        "    SELECT 1 FROM heartbeats newer WHERE newer.agent_id = old.agent_id"
        "    AND (newer.received_at, newer.timestamp) > (old.received_at, old.timestamp))"
        "  LIMIT $2) doomed "
        "WHERE h.agent_id = doomed.agent_id AND h.timestamp = doomed.timestamp",
        cutoff, limit)
    return _row_count(result)


async def prune_signals(conn: asyncpg.Connection, cutoff: str, limit: int) -> int:
    ids = [row[0] for row in await conn.fetch(
        "SELECT signal_id FROM signals WHERE status = 'resolved' AND ts < $1 "
        "AND received_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED", cutoff, limit)]
    for table in ("signal_history", "shipped", "signals"):
        await conn.execute(f"DELETE FROM {table} WHERE signal_id = ANY($1::text[])", ids)
    return len(ids)


async def mark_shipped(conn: asyncpg.Connection, signal_ids: list[str],
                       position: ForwardPosition, now: str) -> None:
    await conn.execute(
        "INSERT INTO shipped (signal_id, shipped_at) SELECT unnest($1::text[]), $2 "
        "ON CONFLICT DO NOTHING", signal_ids, now)
    # Positions are fixed-width text (reads.encode_position): the greater string is the later
    # position, so it never moves back.
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
        "SET value = greatest(meta.value, excluded.value)", FORWARD_POSITION_KEY, position)


async def record_job_run(conn: asyncpg.Connection, run: JobRun) -> None:
    key = JOB_KEY_PREFIX + run.job_id
    previous = await conn.fetchval("SELECT value FROM meta WHERE key = $1 FOR UPDATE", key)
    await conn.execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
                       "UPDATE SET value = excluded.value", key, job_record_value(previous, run))


async def write_probe(conn: asyncpg.Connection, now: str) -> None:
    """What /health commits: a signal inserted and deleted again in one transaction."""
    probe = probe_signal(now)
    await insert_new_signals(conn, [probe], now)
    await conn.execute("DELETE FROM signals WHERE signal_id = $1", probe.signal_id)


async def create_session(conn: asyncpg.Connection, session: ConsoleSession, keep: int) -> None:
    await conn.execute(
        "INSERT INTO sessions (token_hash, actor, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        session.token_hash, session.actor, session.created_at, session.expires_at)
    await conn.execute(
        "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
        "ORDER BY expires_at DESC OFFSET $1)", keep)


async def delete_session(conn: asyncpg.Connection, token_hash: bytes) -> None:
    await conn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)


async def prune_sessions(conn: asyncpg.Connection, now: str) -> int:
    return _row_count(await conn.execute("DELETE FROM sessions WHERE expires_at <= $1", now))


def _row_count(status: str) -> int:
    """The row count of a command status such as `DELETE 12`."""
    return int(status.rsplit(" ", 1)[-1])
