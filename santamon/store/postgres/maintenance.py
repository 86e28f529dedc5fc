"""Keeping the PostgreSQL database healthy: space given back after retention, statistics."""

from __future__ import annotations

import asyncpg

# The tables retention deletes from.
PRUNED_TABLES = ("signals", "signal_history", "shipped", "heartbeats", "sessions",
                 "connection_problems")
COMPACT_TIMEOUT_SECONDS = 600.0


async def compact(conn: asyncpg.Connection) -> None:
    """Retention's last step: its dead rows become free space at once, rather than when
    autovacuum's thresholds are next crossed, and the planner learns what is left. A plain
    VACUUM takes no lock that ingest or reads wait for."""
    await conn.execute(f"VACUUM (ANALYZE) {', '.join(PRUNED_TABLES)}",
                       timeout=COMPACT_TIMEOUT_SECONDS)


async def size_bytes(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT pg_database_size(current_database())")
