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
from ...domain.silences import NewSilence, Silence
from ..base import (
    AgentKey,
    AlertBuilder,
    AnalystKey,
    ConnectionProblem,
    ConsoleSession,
    ForwardPosition,
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
    heartbeat_writes,
    job_record_value,
    last_beat,
    last_beats_sql,
    probe_signal,
    resolution_note,
    shortened_column,
    silence_row,
    stale_alerts,
)
from .reads import Params, open_matching
from .schema import advisory_key

# unnest() turns one array per column into rows: a whole batch is one statement with fourteen
# parameters, however many signals it holds. ORDER BY keeps the batch's order in `seq`.
INSERT_SIGNALS = """
INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, context,
                     rule_description, silence_id, shortened, original_context_bytes,
                     received_at, status)
SELECT signal_id, ts, host_id, rule_id, severity, title, tags, context, rule_description,
       silence_id, shortened, original_context_bytes, $13, $14
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::bigint[])
     WITH ORDINALITY AS batch (signal_id, ts, host_id, rule_id, severity, title, tags, context,
                               rule_description, silence_id, shortened,
                               original_context_bytes, n)
ORDER BY n
ON CONFLICT (signal_id) DO NOTHING
RETURNING signal_id"""
SILENT_AGENT_COLUMNS = "agent_id, last_seen, last_timestamp, version, os_version, uptime_seconds"


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
        [s.silence_id for s in signals], [shortened_column(s) for s in signals],
        [s.original_context_bytes for s in signals], now, NEW_STATUS)
    return {row[0] for row in rows}


# Held by a flush that brings agents new to the store, before any row lock: two instances
# flushing the first heartbeats of one agent take turns, so the second sees the first's row
# (and neither keeps its heartbeat as the agent's first). One lock for all new agents: new ones
# are rare after a fleet's first minutes, and a lock per agent could fill the lock table.
NEW_AGENTS_LOCK = advisory_key("santamon new agents")

INSERT_KEPT_BEATS = """
INSERT INTO heartbeats (agent_id, timestamp, version, os_version, uptime_seconds, received_at,
                        reasons)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::double precision[],
                     $6::text[], $7::text[])
ON CONFLICT DO NOTHING"""
UPSERT_AGENTS = f"""
INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version, os_version,
                    uptime_seconds, auth, status)
SELECT *, 'active' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                               $6::text[], $7::double precision[], $8::text[])
ORDER BY 1
{AGENT_UPSERT}"""


async def record_heartbeats(conn: asyncpg.Connection, beats: list[Heartbeat],
                            history: HistoryRule) -> None:
    agent_ids = sorted({beat.agent_id for beat in beats})
    # Agents are never deleted: one found here is there when it is locked below.
    known = await conn.fetchval(
        "SELECT count(*) FROM agents WHERE agent_id = ANY($1::text[])", agent_ids)
    if known < len(agent_ids):
        await conn.execute("SELECT pg_advisory_xact_lock($1)", NEW_AGENTS_LOCK)
    # Locked in agent order, like every write that locks several agents (mark_stale): a stale
    # check or another instance's flush of the same agents waits here, never in a cycle.
    await conn.execute("SELECT FROM agents WHERE agent_id = ANY($1::text[]) "
                       "ORDER BY agent_id FOR UPDATE", agent_ids)
    # Read once they are locked, in a statement of its own: under READ COMMITTED it sees every
    # flush and stale check committed before, their history rows included.
    stored = dict(last_beat(row) for row in await conn.fetch(
        last_beats_sql("SELECT unnest($1::text[])"), agent_ids))
    writes = heartbeat_writes(beats, stored, history)
    if writes.kept:
        await conn.execute(INSERT_KEPT_BEATS, *map(list, zip(*writes.kept, strict=True)))
    if writes.latest:
        await conn.execute(
            UPSERT_AGENTS, *map(list, zip(*[
                (b.agent_id, first_seen, b.received_at, b.timestamp, b.version, b.os_version,
                 b.uptime_seconds, b.auth) for b, first_seen in writes.latest], strict=True)))
    for agent_id, silent_since, heard in writes.reconnected:
        await _note_reconnection(conn, agent_id, reconnection_note(silent_since, heard), heard)


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
                     note: str | None, actor: str, now: str, *,
                     only_changes: bool = False) -> StatusResult:
    """`only_changes`: no note is recorded on a signal already in `status`."""
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
    recorded = changed if only_changes else [
        sid for sid in ids if sid in current and (current[sid] != status or note)]
    if recorded:
        await _record_history(conn, recorded, [current[sid] for sid in recorded], status, now,
                              note, actor)
    return StatusResult(updated=len(current), changed=len(changed),
                        not_found=[sid for sid in ids if sid not in current])


async def mark_stale(conn: asyncpg.Connection, cutoff: str, alert: AlertBuilder,
                     summary: SummaryBuilder | None, now: str) -> list[str]:
    # A concurrent check waits for this one's row locks, then re-reads the rows and finds
    # them stale (or their alert no longer held): each silence is marked once, and its
    # alert's id (one per silence) is inserted once whatever happens.
    # Every agent it may change is locked first, in one pass in agent order, as a flush of
    # heartbeats locks them: the two never wait for each other in a cycle.
    await conn.execute(
        "SELECT FROM agents WHERE (status = 'active' AND last_seen < $1) "
        "OR (status = 'stale' AND alert_held) ORDER BY agent_id FOR UPDATE", cutoff)
    rows = await conn.fetch(
        "UPDATE agents SET status = 'stale', stale_since = $1 "
        f"WHERE status = 'active' AND last_seen < $2 RETURNING {SILENT_AGENT_COLUMNS}", now, cutoff)
    silent = sorted((SilentAgent(*row) for row in rows), key=lambda agent: agent.agent_id)
    held = [SilentAgent(*row) for row in await conn.fetch(
        f"SELECT {SILENT_AGENT_COLUMNS} FROM agents WHERE status = 'stale' AND alert_held "
        "ORDER BY agent_id")]
    outcome = stale_alerts(silent, held, now, alert, summary)
    await conn.execute("UPDATE agents SET alert_held = (agent_id = ANY($1::text[])) "
                       "WHERE agent_id = ANY($2::text[])",
                       outcome.held, [*outcome.held, *outcome.raised])
    await insert_new_signals(conn, outcome.alerts, now)
    return outcome.reported


async def create_silence(conn: asyncpg.Connection, new: NewSilence, resolve_matching: bool,
                         now: str) -> tuple[Silence, int]:
    matchers = new.matchers
    silence_id = await conn.fetchval(
        "INSERT INTO silences (rule_id, host_id, severity, title, comment, created_by, "
        "created_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        matchers.rule_id, matchers.host_id, matchers.severity, matchers.title, new.comment,
        new.created_by, now, new.ends_at)
    resolved = 0
    if resolve_matching:
        p = Params()
        # Locked in id order like any triage; a signal triaged meanwhile is re-checked once
        # its lock is had, and left alone unless it is still open.
        ids = [row[0] for row in await conn.fetch(
            f"SELECT signal_id FROM signals WHERE {open_matching(matchers, p)} "
            "ORDER BY signal_id FOR UPDATE", *p.values)]
        resolved = (await set_status(conn, ids, "resolved",
                                     resolution_note(silence_id, new.comment),
                                     new.created_by, now, only_changes=True)).changed
    await _bump_silences_version(conn)
    return Silence(silence_id, matchers, new.comment, new.created_by, now, new.ends_at), resolved


async def expire_silence(conn: asyncpg.Connection, silence_id: int, actor: str,
                         now: str) -> Silence | None:
    expired = await conn.execute(
        "UPDATE silences SET expired_at = $1, expired_by = $2 WHERE id = $3 AND "
        "expired_at IS NULL AND ends_at > $1", now, actor, silence_id)
    if _row_count(expired):
        await _bump_silences_version(conn)
    row = await conn.fetchrow(f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = $1",
                              silence_id)
    return silence_row(row) if row else None


async def _bump_silences_version(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO UPDATE "
        "SET value = (meta.value::bigint + 1)::text", SILENCES_VERSION_KEY)


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


async def add_connection_problems(conn: asyncpg.Connection,
                                  problems: list[ConnectionProblem]) -> None:
    # In key order, so instances adding to the same rows lock them in the same order.
    await conn.execute(
        "INSERT INTO connection_problems AS p (hour, client, kind, count, last_seen, detail) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], "
        "$6::text[]) ORDER BY 1, 2, 3 "
        "ON CONFLICT (hour, client, kind) DO UPDATE SET count = p.count + excluded.count, "
        "detail = CASE WHEN excluded.last_seen >= p.last_seen THEN excluded.detail "
        "ELSE p.detail END, last_seen = greatest(p.last_seen, excluded.last_seen)",
        [p.hour for p in problems], [p.client for p in problems], [p.kind for p in problems],
        [p.count for p in problems], [p.last_seen for p in problems],
        [p.detail for p in problems])


async def prune_connection_problems(conn: asyncpg.Connection, cutoff: str) -> int:
    return _row_count(await conn.execute("DELETE FROM connection_problems WHERE hour < $1",
                                         cutoff))


async def create_session(conn: asyncpg.Connection, session: ConsoleSession, keep: int) -> None:
    await conn.execute(
        "INSERT INTO sessions (token_hash, actor, created_at, expires_at, role, key_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)", session.token_hash, session.actor,
        session.created_at, session.expires_at, session.role, session.key_id)
    await conn.execute(
        "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
        "ORDER BY expires_at DESC OFFSET $1)", keep)


async def delete_session(conn: asyncpg.Connection, token_hash: bytes) -> None:
    await conn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)


async def prune_sessions(conn: asyncpg.Connection, now: str) -> int:
    return _row_count(await conn.execute("DELETE FROM sessions WHERE expires_at <= $1", now))


# -- keys -------------------------------------------------------------------------------------

async def _keys_changed(conn: asyncpg.Connection) -> None:
    """Move the version other instances poll (common.KEYS_VERSION_KEY)."""
    await conn.execute("INSERT INTO meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO "
                       "UPDATE SET value = (meta.value::bigint + 1)::text", KEYS_VERSION_KEY)


async def _agent_key(conn: asyncpg.Connection, key_id: str, *,
                     lock: bool = False) -> AgentKey | None:
    row = await conn.fetchrow(f"SELECT {AGENT_KEY_COLUMNS} FROM agent_keys WHERE key_id = $1"
                              + (" FOR UPDATE" if lock else ""), key_id)
    return agent_key(row) if row else None


async def _insert_agent_keys(conn: asyncpg.Connection, keys: list[NewAgentKey],
                             hosts: list[str], now: str,
                             replaces: str | None = None) -> list[AgentKey]:
    await conn.execute(
        "INSERT INTO agent_keys (key_id, key_hash, host_id, created_at, created_by, replaces) "
        "SELECT key_id, key_hash, host_id, $4, created_by, $5 FROM unnest($1::text[], "
        "$2::bytea[], $3::text[], $6::text[]) AS k (key_id, key_hash, host_id, created_by)",
        [k.key_id for k in keys], [k.key_hash for k in keys], hosts, now, replaces,
        [k.created_by for k in keys])
    return [AgentKey(k.key_id, k.key_hash, host, now, k.created_by, replaces=replaces)
            for k, host in zip(keys, hosts, strict=True)]


async def create_agent_keys(conn: asyncpg.Connection, keys: list[NewAgentKey],
                            now: str) -> list[AgentKey]:
    created = await _insert_agent_keys(conn, keys, [k.host_id for k in keys], now)
    await _keys_changed(conn)
    return created


async def rotate_agent_key(conn: asyncpg.Connection, key_id: str, new: NewAgentKey,
                           old_valid_until: str, now: str) -> AgentKey | None:
    # Locked: a concurrent revocation or rotation of the same key waits for this one.
    old = await _agent_key(conn, key_id, lock=True)
    if old is None or old.revoked_at or (old.expires_at and old.expires_at <= now):
        return None
    until = min(old_valid_until, old.expires_at or old_valid_until)
    await conn.execute("UPDATE agent_keys SET expires_at = $1 WHERE key_id = $2", until, key_id)
    (created,) = await _insert_agent_keys(conn, [new], [old.host_id], now, key_id)
    await _keys_changed(conn)
    return created


async def revoke_agent_key(conn: asyncpg.Connection, key_id: str, actor: str,
                           now: str) -> AgentKey | None:
    result = await conn.execute("UPDATE agent_keys SET revoked_at = $1, revoked_by = $2 "
                                "WHERE key_id = $3 AND revoked_at IS NULL", now, actor, key_id)
    if _row_count(result):
        await _keys_changed(conn)
    return await _agent_key(conn, key_id)


async def record_key_use(conn: asyncpg.Connection, uses: list[KeyUse]) -> None:
    # In key order, so that two instances recording the same keys never deadlock.
    ordered = sorted(uses, key=lambda use: use.key_id)
    await conn.execute(
        "UPDATE agent_keys k SET last_used_at = u.at, last_used_from = u.address "
        "FROM unnest($1::text[], $2::text[], $3::text[]) AS u (key_id, at, address) "
        "WHERE k.key_id = u.key_id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
        [use.key_id for use in ordered], [use.at for use in ordered],
        [use.address for use in ordered])


async def create_analyst_key(conn: asyncpg.Connection, key: NewAnalystKey,
                             now: str) -> AnalystKey:
    # The unique index on names not revoked is the judge between concurrent creations.
    inserted = await conn.fetchval(
        "INSERT INTO analyst_keys (key_id, key_hash, name, role, created_at, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) WHERE revoked_at IS NULL "
        "DO NOTHING RETURNING key_id",
        key.key_id, key.key_hash, key.name, key.role, now, key.created_by)
    if inserted is None:
        raise NameTaken(f"{key.name} already has a key; revoke it first")
    await _keys_changed(conn)
    return AnalystKey(key.key_id, key.key_hash, key.name, key.role, now, key.created_by)


async def revoke_analyst_key(conn: asyncpg.Connection, key_id: str, actor: str,
                             now: str) -> AnalystKey | None:
    result = await conn.execute("UPDATE analyst_keys SET revoked_at = $1, revoked_by = $2 "
                                "WHERE key_id = $3 AND revoked_at IS NULL", now, actor, key_id)
    if _row_count(result):
        await _keys_changed(conn)
    await conn.execute("DELETE FROM sessions WHERE key_id = $1", key_id)
    row = await conn.fetchrow(
        f"SELECT {ANALYST_KEY_COLUMNS} FROM analyst_keys WHERE key_id = $1", key_id)
    return analyst_key(row) if row else None


def _row_count(status: str) -> int:
    """The row count of a command status such as `DELETE 12`."""
    return int(status.rsplit(" ", 1)[-1])
