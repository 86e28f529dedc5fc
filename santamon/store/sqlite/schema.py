"""Versioned schema and upgrades of the SQLite store (PRAGMA user_version).

Version 0 is either an empty file or a database written by the seed backend: same tables and
column names, agents' raw `ts` strings with mixed offsets, naive-UTC `received_at`. Upgrading
keeps every row and rewrites timestamps into the stored UTC form, so that comparing two
timestamps as strings compares the instants.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiosqlite

from ... import timeutil
from ..base import SchemaTooNew

log = logging.getLogger(__name__)

SIGNALS_TABLE = """
CREATE TABLE signals (
    signal_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    host_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    tags TEXT,
    context TEXT,
    received_at TEXT NOT NULL,
    status TEXT DEFAULT 'open',
    rule_description TEXT
)"""

HEARTBEATS_TABLE = """
CREATE TABLE heartbeats (
    agent_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    version TEXT,
    os_version TEXT,
    uptime_seconds REAL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, timestamp)
)"""

V1_TABLES = [
    """CREATE TABLE IF NOT EXISTS shipped (
        signal_id TEXT PRIMARY KEY,
        shipped_at TEXT NOT NULL
    )""",
    """CREATE TABLE agents (
        agent_id TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        last_timestamp TEXT,
        version TEXT,
        os_version TEXT,
        uptime_seconds REAL,
        status TEXT NOT NULL DEFAULT 'active',
        stale_since TEXT
    )""",
    """CREATE TABLE signal_history (
        id INTEGER PRIMARY KEY,
        signal_id TEXT NOT NULL,
        from_status TEXT,
        to_status TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        note TEXT,
        actor TEXT NOT NULL
    )""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
]

# Each filter of GET /signals has an index that also serves the newest-first order (the
# row id, `seq` since version 3, is implicitly the last column of every index and breaks
# ties). Status and severity ride inside them so the other filters are checked without
# reading the (large) rows; severity alone walks (status, ts, severity) under the default
# status, or (ts) for status=all.
SIGNAL_INDEXES = [
    "CREATE INDEX idx_signals_ts ON signals(ts)",
    "CREATE INDEX idx_signals_status_ts ON signals(status, ts, severity)",
    "CREATE INDEX idx_signals_host_ts ON signals(host_id, ts, status, severity)",
    "CREATE INDEX idx_signals_rule_ts ON signals(rule_id, ts, status, severity)",
]

V1_INDEXES = [
    *SIGNAL_INDEXES,
    "CREATE INDEX idx_heartbeat_agent ON heartbeats(agent_id, received_at DESC)",
    "CREATE INDEX idx_history_signal ON signal_history(signal_id, id)",
    "CREATE INDEX idx_agents_status ON agents(status, last_seen)",
]

SEED_INDEXES = ["idx_ts", "idx_host_id", "idx_severity", "idx_status", "idx_heartbeat_agent"]


async def pragma(conn: aiosqlite.Connection, statement: str) -> tuple[object, ...] | None:
    """Run a PRAGMA and finish its statement, so no half-read result keeps a lock."""
    async with conn.execute(f"PRAGMA {statement}") as cur:
        return await cur.fetchone()


def _normalize_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return timeutil.normalize(value)
    except ValueError:
        return None


async def _table_exists(conn: aiosqlite.Connection, name: str) -> bool:
    async with conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) as cur:
        return await cur.fetchone() is not None


async def _columns(conn: aiosqlite.Connection, table: str) -> set[str]:
    async with conn.execute(f"PRAGMA table_info({table})") as cur:
        return {row[1] for row in await cur.fetchall()}


async def _to_v1(conn: aiosqlite.Connection) -> None:
    if await _table_exists(conn, "signals"):
        await _upgrade_seed(conn)
    else:
        await conn.execute(SIGNALS_TABLE)
        await conn.execute(HEARTBEATS_TABLE)
    for statement in V1_TABLES:
        await conn.execute(statement)
    for statement in V1_INDEXES:
        await conn.execute(statement)
    if await _table_exists(conn, "heartbeats"):
        await _agents_from_heartbeats(conn)


async def _upgrade_seed(conn: aiosqlite.Connection) -> None:
    """Rebuild the seed's tables with timestamps in stored form, keeping every row."""
    await conn.create_function("santamon_ts", 1, _normalize_or_none, deterministic=True)
    for index in SEED_INDEXES:
        await conn.execute(f"DROP INDEX IF EXISTS {index}")
    columns = await _columns(conn, "signals")
    status = "COALESCE(status, 'open')" if "status" in columns else "'open'"
    description = "rule_description" if "rule_description" in columns else "NULL"
    await conn.execute("ALTER TABLE signals RENAME TO seed_signals")
    await conn.execute(SIGNALS_TABLE)
    # Unparseable seed timestamps fall back to when the seed received the signal.
    await conn.execute(f"""
        INSERT INTO signals (signal_id, ts, host_id, rule_id, severity, title, tags, context,
                             received_at, status, rule_description)
        SELECT signal_id,
               COALESCE(santamon_ts(ts), santamon_ts(received_at),
                        '1970-01-01T00:00:00.000000000Z'),
               host_id, rule_id, lower(severity), title,
               CASE WHEN json_valid(tags) AND json_type(tags) = 'array' THEN tags ELSE '[]' END,
               CASE WHEN json_valid(context) AND json_type(context) = 'object' THEN context
                    WHEN context IS NULL THEN '{{}}'
                    ELSE json_object('raw', context) END,
               COALESCE(santamon_ts(received_at), '1970-01-01T00:00:00.000000000Z'),
               {status}, {description}
        FROM seed_signals ORDER BY rowid""")
    await conn.execute("DROP TABLE seed_signals")
    async with conn.execute("SELECT count(*) FROM signals") as cur:
        (count,) = await cur.fetchone()
    log.info("upgraded a seed-schema database: %d signals kept", count)

    if await _table_exists(conn, "heartbeats"):
        await conn.execute("ALTER TABLE heartbeats RENAME TO seed_heartbeats")
        await conn.execute(HEARTBEATS_TABLE)
        await conn.execute("""
            INSERT OR IGNORE INTO heartbeats
                (agent_id, timestamp, version, os_version, uptime_seconds, received_at)
            SELECT agent_id, COALESCE(santamon_ts(timestamp), timestamp), version, os_version,
                   uptime_seconds,
                   COALESCE(santamon_ts(received_at), '1970-01-01T00:00:00.000000000Z')
            FROM seed_heartbeats""")
        await conn.execute("DROP TABLE seed_heartbeats")
    else:
        await conn.execute(HEARTBEATS_TABLE)


async def _agents_from_heartbeats(conn: aiosqlite.Connection) -> None:
    await conn.execute("""
        INSERT INTO agents (agent_id, first_seen, last_seen, last_timestamp, version,
                            os_version, uptime_seconds, status)
        SELECT h.agent_id, f.first_seen, h.received_at, h.timestamp, h.version, h.os_version,
               h.uptime_seconds, 'active'
        FROM heartbeats h
        JOIN (SELECT agent_id, min(received_at) AS first_seen, max(received_at) AS last_seen
              FROM heartbeats GROUP BY agent_id) f
          ON f.agent_id = h.agent_id AND h.received_at = f.last_seen
        WHERE true
        ON CONFLICT (agent_id) DO NOTHING""")


# Counts for /stats and search, kept by triggers so every write path (ingest, triage,
# retention, a migration) keeps them exact, and /stats never scans the signals.
V2_COUNTER_TABLES = [
    """CREATE TABLE signal_counts (
        severity TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (severity, status)) WITHOUT ROWID""",
    "CREATE TABLE host_counts (host_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE rule_counts (rule_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
    # Titles repeat per rule, so search looks through the few distinct (rule, title) pairs
    # first instead of every signal.
    """CREATE TABLE signal_titles (
        rule_id TEXT NOT NULL, title TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (rule_id, title)) WITHOUT ROWID""",
]
SIGNAL_COUNT_TRIGGERS = [
    """CREATE TRIGGER signals_count_insert AFTER INSERT ON signals BEGIN
        INSERT INTO signal_counts VALUES (NEW.severity, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO host_counts VALUES (NEW.host_id, 1) ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO rule_counts VALUES (NEW.rule_id, 1) ON CONFLICT DO UPDATE SET n = n + 1;
        INSERT INTO signal_titles VALUES (NEW.rule_id, NEW.title, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER signals_count_delete AFTER DELETE ON signals BEGIN
        UPDATE signal_counts SET n = n - 1 WHERE severity = OLD.severity AND status = OLD.status;
        UPDATE host_counts SET n = n - 1 WHERE host_id = OLD.host_id;
        UPDATE rule_counts SET n = n - 1 WHERE rule_id = OLD.rule_id;
        UPDATE signal_titles SET n = n - 1 WHERE rule_id = OLD.rule_id AND title = OLD.title;
    END""",
    """CREATE TRIGGER signals_count_status AFTER UPDATE OF status, severity ON signals
    WHEN OLD.status IS NOT NEW.status OR OLD.severity IS NOT NEW.severity BEGIN
        UPDATE signal_counts SET n = n - 1 WHERE severity = OLD.severity AND status = OLD.status;
        INSERT INTO signal_counts VALUES (NEW.severity, NEW.status, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END""",
]


async def _to_v2(conn: aiosqlite.Connection) -> None:
    for statement in [*V2_COUNTER_TABLES, *SIGNAL_COUNT_TRIGGERS]:
        await conn.execute(statement)
    # One pass over the signals fills three of the tables; hosts come from their index.
    await conn.execute("""
        CREATE TEMP TABLE signal_groups AS
        SELECT rule_id, title, severity, status, count(*) AS n FROM signals
        GROUP BY rule_id, title, severity, status""")
    await conn.execute("INSERT INTO signal_counts SELECT severity, status, sum(n) "
                       "FROM signal_groups GROUP BY severity, status")
    await conn.execute("INSERT INTO rule_counts SELECT rule_id, sum(n) FROM signal_groups "
                       "GROUP BY rule_id")
    await conn.execute("INSERT INTO signal_titles SELECT rule_id, title, sum(n) "
                       "FROM signal_groups GROUP BY rule_id, title")
    await conn.execute("DROP TABLE signal_groups")
    await conn.execute("INSERT INTO host_counts SELECT host_id, count(*) FROM signals "
                       "GROUP BY host_id")


# Version 3: `seq`, a sequence number given to each signal at insert and never reused
# (AUTOINCREMENT), for cursors and the forwarder's position. Unlike a plain row id it survives
# VACUUM and a deleted newest row. The old row ids become the sequence numbers, so stored
# forwarding positions stay valid. Also console sessions.
SIGNALS_V3 = """
CREATE TABLE signals (
    signal_id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    host_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    tags TEXT,
    context TEXT,
    received_at TEXT NOT NULL,
    status TEXT DEFAULT 'open',
    rule_description TEXT,
    seq INTEGER PRIMARY KEY AUTOINCREMENT
)"""
SIGNAL_COLUMNS_V2 = ("signal_id, ts, host_id, rule_id, severity, title, tags, context, "
                     "received_at, status, rule_description")
V3_TABLES = [
    """CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        actor TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    "CREATE INDEX idx_sessions_expires ON sessions(expires_at)",
]


async def _to_v3(conn: aiosqlite.Connection) -> None:
    await conn.execute("ALTER TABLE signals RENAME TO signals_v2")
    await conn.execute(SIGNALS_V3)
    await conn.execute(f"INSERT INTO signals (seq, {SIGNAL_COLUMNS_V2}) "
                       f"SELECT rowid, {SIGNAL_COLUMNS_V2} FROM signals_v2 ORDER BY rowid")
    await conn.execute("DROP TABLE signals_v2")  # with its indexes and triggers
    for statement in [*SIGNAL_INDEXES, *SIGNAL_COUNT_TRIGGERS, *V3_TABLES]:
        await conn.execute(statement)


# Version 4: keys kept in the database, only as hashes: agent keys bound to one host each, and
# people's keys with their role. A name has at most one key not revoked. Agents record how
# they authenticate; console sessions the role and key they were opened with (sessions so far
# were the admin key's, whose actor the history now calls "admin").
V4_STATEMENTS = [
    """CREATE TABLE agent_keys (
        key_id TEXT PRIMARY KEY,
        key_hash BLOB NOT NULL UNIQUE,
        host_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT,
        revoked_by TEXT,
        replaces TEXT,
        last_used_at TEXT,
        last_used_from TEXT
    )""",
    "CREATE INDEX idx_agent_keys_host ON agent_keys(host_id, created_at)",
    """CREATE TABLE analyst_keys (
        key_id TEXT PRIMARY KEY,
        key_hash BLOB NOT NULL UNIQUE,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT,
        revoked_by TEXT
    )""",
    "CREATE UNIQUE INDEX idx_analyst_keys_name ON analyst_keys(name) WHERE revoked_at IS NULL",
    "ALTER TABLE agents ADD COLUMN auth TEXT",
    "ALTER TABLE sessions ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'",
    "ALTER TABLE sessions ADD COLUMN key_id TEXT",
    "UPDATE sessions SET actor = 'admin' WHERE actor = 'analyst'",
]


async def _to_v4(conn: aiosqlite.Connection) -> None:
    for statement in V4_STATEMENTS:
        await conn.execute(statement)


# Version 5: what the server cut from a signal to store it instead of refusing it, and agent
# connection problems counted per hour (added to by every process, pruned by retention). A row
# id of its own, so `migrate-db` copies it like the other tables.
V5_STATEMENTS = [
    "ALTER TABLE signals ADD COLUMN shortened TEXT",
    "ALTER TABLE signals ADD COLUMN original_context_bytes INTEGER",
    """CREATE TABLE connection_problems (
        hour TEXT NOT NULL,
        client TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_seen TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (hour, client, kind)
    )""",
]


async def _to_v5(conn: aiosqlite.Connection) -> None:
    for statement in V5_STATEMENTS:
        await conn.execute(statement)


# Version 6: silences and grouped repeats.
# - `signals.silence_id`: the active silence a signal matched when it was stored. The status
#   and time indexes carry it, so the default queue (silenced ones hidden) never reads a row
#   to skip them, even when a flood of them is newer than the page. The host and rule indexes
#   are left as they are: rebuilding them would add a third to the first open of a 1M-row
#   file, and a view of one host or rule only reads its own silenced signals to skip them.
# - `group_counts`: per (rule, host) and per status, severity and silence, how many signals
#   and their first and last event time, kept exact by triggers on every write path, so
#   GET /signals/groups walks the newest groups without touching the signals. A bucket whose
#   first or last signal leaves is re-measured through `idx_signals_group` (two seeks); an
#   emptied bucket has no times, which the walk index skips.
# - `silence_counts`: signals per silence, status and severity (for /silences, and for the
#   open critical + high count, which leaves silenced signals out).
# - `agents.alert_held`: a stale agent whose alert a maintenance window is holding.
V6_SIGNAL_INDEXES = [
    # The time index also carries what a group of repeats needs, so grouping a time window
    # reads no row.
    "CREATE INDEX idx_signals_ts ON signals(ts, silence_id, status, severity, rule_id, "
    "host_id)",
    "CREATE INDEX idx_signals_status_ts ON signals(status, ts, severity, silence_id)",
    "CREATE INDEX idx_signals_group ON signals(rule_id, host_id, status, severity, "
    "silence_id, ts)",
]
V6_TABLES = [
    """CREATE TABLE silences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule_id TEXT,
        host_id TEXT,
        severity TEXT,
        title TEXT,
        comment TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        expired_at TEXT,
        expired_by TEXT
    )""",
    "CREATE INDEX idx_silences_ends ON silences(ends_at)",
    """CREATE TABLE group_counts (
        rule_id TEXT NOT NULL, host_id TEXT NOT NULL, status TEXT NOT NULL,
        severity TEXT NOT NULL, silence_id INTEGER NOT NULL,  -- 0: not silenced
        n INTEGER NOT NULL, first_ts TEXT, last_ts TEXT,
        PRIMARY KEY (rule_id, host_id, status, severity, silence_id)) WITHOUT ROWID""",
    "CREATE INDEX idx_group_counts_walk ON group_counts(status, last_ts)",
    "CREATE INDEX idx_group_counts_host ON group_counts(host_id)",
    """CREATE TABLE silence_counts (
        silence_id INTEGER NOT NULL, status TEXT NOT NULL, severity TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (silence_id, status, severity)) WITHOUT ROWID""",
    "ALTER TABLE agents ADD COLUMN alert_held INTEGER NOT NULL DEFAULT 0",
]
_BUCKET = ("rule_id = {row}.rule_id AND host_id = {row}.host_id AND status = {row}.status "
           "AND severity = {row}.severity")
_GROUP_ADD = """
        INSERT INTO group_counts VALUES (NEW.rule_id, NEW.host_id, NEW.status, NEW.severity,
                                         coalesce(NEW.silence_id, 0), 1, NEW.ts, NEW.ts)
            ON CONFLICT DO UPDATE SET n = n + 1,
                first_ts = min(coalesce(first_ts, excluded.first_ts), excluded.first_ts),
                last_ts = max(coalesce(last_ts, excluded.last_ts), excluded.last_ts);"""
# The bucket's times are measured again only when its first or last signal left.
_GROUP_REMOVE = f"""
        UPDATE group_counts SET n = n - 1 WHERE {_BUCKET.format(row="OLD")}
            AND silence_id = coalesce(OLD.silence_id, 0);
        UPDATE group_counts SET
            first_ts = (SELECT min(ts) FROM signals INDEXED BY idx_signals_group
                        WHERE {_BUCKET.format(row="OLD")} AND silence_id IS OLD.silence_id),
            last_ts = (SELECT max(ts) FROM signals INDEXED BY idx_signals_group
                       WHERE {_BUCKET.format(row="OLD")} AND silence_id IS OLD.silence_id)
            WHERE {_BUCKET.format(row="OLD")} AND silence_id = coalesce(OLD.silence_id, 0)
            AND (first_ts = OLD.ts OR last_ts = OLD.ts);"""
_SILENCED_ADD = """
        INSERT INTO silence_counts VALUES (NEW.silence_id, NEW.status, NEW.severity, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;"""
_SILENCED_REMOVE = """
        UPDATE silence_counts SET n = n - 1 WHERE silence_id = OLD.silence_id
            AND status = OLD.status AND severity = OLD.severity;"""
V6_TRIGGERS = [
    f"CREATE TRIGGER signals_group_insert AFTER INSERT ON signals BEGIN {_GROUP_ADD} END",
    f"CREATE TRIGGER signals_group_delete AFTER DELETE ON signals BEGIN {_GROUP_REMOVE} END",
    f"""CREATE TRIGGER signals_group_update AFTER UPDATE OF status, severity, silence_id, ts,
        rule_id, host_id ON signals
        WHEN OLD.status IS NOT NEW.status OR OLD.severity IS NOT NEW.severity
          OR OLD.silence_id IS NOT NEW.silence_id OR OLD.ts IS NOT NEW.ts
          OR OLD.rule_id IS NOT NEW.rule_id OR OLD.host_id IS NOT NEW.host_id
        BEGIN {_GROUP_REMOVE} {_GROUP_ADD} END""",
    f"""CREATE TRIGGER signals_silenced_insert AFTER INSERT ON signals
        WHEN NEW.silence_id IS NOT NULL BEGIN {_SILENCED_ADD} END""",
    f"""CREATE TRIGGER signals_silenced_delete AFTER DELETE ON signals
        WHEN OLD.silence_id IS NOT NULL BEGIN {_SILENCED_REMOVE} END""",
    f"""CREATE TRIGGER signals_silenced_update AFTER UPDATE OF status, severity, silence_id
        ON signals WHEN (OLD.silence_id IS NOT NULL OR NEW.silence_id IS NOT NULL)
          AND (OLD.status IS NOT NEW.status OR OLD.severity IS NOT NEW.severity
               OR OLD.silence_id IS NOT NEW.silence_id)
        BEGIN
        {_SILENCED_REMOVE}
        INSERT INTO silence_counts SELECT NEW.silence_id, NEW.status, NEW.severity, 1
            WHERE NEW.silence_id IS NOT NULL ON CONFLICT DO UPDATE SET n = n + 1;
        END""",
]


async def _to_v6(conn: aiosqlite.Connection) -> None:
    await conn.execute("ALTER TABLE signals ADD COLUMN silence_id INTEGER")
    for name in ("idx_signals_ts", "idx_signals_status_ts"):  # rebuilt under the same names
        await conn.execute(f"DROP INDEX {name}")
    for statement in [*V6_SIGNAL_INDEXES, *V6_TABLES]:
        await conn.execute(statement)
    await conn.execute(
        "INSERT INTO group_counts SELECT rule_id, host_id, status, severity, 0, count(*), "
        "min(ts), max(ts) FROM signals INDEXED BY idx_signals_group "
        "GROUP BY rule_id, host_id, status, severity")
    for statement in V6_TRIGGERS:
        await conn.execute(statement)


# Version 7: the heartbeats table becomes each agent's history (domain/heartbeats.py), with why
# each heartbeat was kept. Older rows keep NULL: the server that wrote them kept every one.
async def _to_v7(conn: aiosqlite.Connection) -> None:
    await conn.execute("ALTER TABLE heartbeats ADD COLUMN reasons TEXT")


MIGRATIONS: list[Callable[[aiosqlite.Connection], Awaitable[None]]] = [
    _to_v1, _to_v2, _to_v3, _to_v4, _to_v5, _to_v6, _to_v7]
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: aiosqlite.Connection, target: int = SCHEMA_VERSION) -> bool:
    """Bring the database to `target` (the newest by default), one transaction per version;
    returns whether anything changed."""
    async with conn.execute("PRAGMA user_version") as cur:
        (version,) = await cur.fetchone()
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(f"database schema version {version} is newer than this "
                           f"server's ({SCHEMA_VERSION}); upgrade the server")
    if version >= target:
        return False
    # A rollback journal while upgrading: rebuilt tables are written once, not to the WAL and
    # then again into the file (no reader is connected yet; the store turns WAL back on).
    await pragma(conn, "journal_mode = DELETE")
    for step in range(version + 1, target + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await MIGRATIONS[step - 1](conn)
            await pragma(conn, f"user_version = {step}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        log.info("database schema upgraded to version %d", step)
    return True
