"""Pruning old data in small transactions, so ingest never waits long behind it."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..domain.problems import RETENTION_SECONDS as PROBLEM_RETENTION_SECONDS
from ..store import Store
from ..timeutil import format_utc, now_ns

ROWS_PER_TRANSACTION = 2000
MAX_TRANSACTIONS_PER_RUN = 500  # a run stops after ~1M rows; the next one carries on


async def _prune_all(prune, cutoff: str) -> int:
    total = 0
    for _ in range(MAX_TRANSACTIONS_PER_RUN):
        deleted = await prune(cutoff, ROWS_PER_TRANSACTION)
        total += deleted
        if deleted < ROWS_PER_TRANSACTION:
            break
    return total


async def prune(store: Store, settings: Settings,
                clock: Callable[[], int] = now_ns) -> str:
    now = clock()
    heartbeats = await _prune_all(
        store.prune_heartbeats, format_utc(now - int(settings.heartbeat_retention * 1e9)))
    signals = 0
    if settings.signal_retention > 0:
        signals = await _prune_all(
            store.prune_resolved_signals, format_utc(now - int(settings.signal_retention * 1e9)))
    sessions = await store.prune_sessions(format_utc(now))
    problems = await store.prune_connection_problems(
        format_utc(now - PROBLEM_RETENTION_SECONDS * 1_000_000_000))
    await store.compact()
    return (f"pruned {heartbeats} heartbeat(s), {signals} resolved signal(s), "
            f"{sessions} expired console session(s) and {problems} hour(s) of agent "
            "connection problems")
