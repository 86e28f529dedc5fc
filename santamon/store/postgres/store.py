"""The PostgreSQL store: a pool of asyncpg connections, one transaction per write, concurrent
ingests grouped into one transaction (grouping.py).

Several processes and instances may share the database, so nothing here relies on being the
only writer. Every failure of the database surfaces as StoreUnavailable, within bounded time
(connect, acquire and command timeouts), and the pool connects again by itself once the
database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg

from ... import timeutil
from ..base import (
    AgentFilter,
    AgentHistory,
    AgentKey,
    AlertBuilder,
    AnalystKey,
    ConnectionProblem,
    ConsoleSession,
    ForwardBatch,
    ForwardPosition,
    GroupPage,
    Heartbeat,
    HistoryRule,
    JobRecord,
    JobRun,
    KeyUse,
    Matchers,
    NewAgentKey,
    NewAnalystKey,
    NewSignal,
    NewSilence,
    SignalFilter,
    SignalPage,
    Silence,
    StatusResult,
    StoreUnavailable,
    SummaryBuilder,
)
from ..common import IngestFailures, first_occurrences, stored_flags, triage_in_chunks
from . import maintenance, reads, writes
from .errors import DATABASE_ERRORS, RefusedData, unavailable, worth_retrying
from .grouping import Calls, InsertGroups
from .locks import JobLocks
from .schema import migrate

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
# A request waits this long for a free connection, and a statement this long for its answer,
# before the caller hears StoreUnavailable (503, the agent retries).
ACQUIRE_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0
TRANSACTION_ATTEMPTS = 3  # after a deadlock or serialization failure
SERVER_SETTINGS = {
    "application_name": "santamon",
    # A transaction of ours left open (a client that vanished mid-transaction) must not hold
    # locks or the forwarder's horizon for long.
    "idle_in_transaction_session_timeout": "60s",
}

CommitObserver = Callable[[int, float], None]  # (writes in one commit, seconds it took)
P = ParamSpec("P")
R = TypeVar("R")
Work = Callable[Concatenate[asyncpg.Connection, P], Awaitable[R]]


class PostgresStore:
    def __init__(self, url: str, *, pool_size: int = 10,
                 command_timeout: float = COMMAND_TIMEOUT_SECONDS,
                 clock: Callable[[], int] = timeutil.now_ns,
                 on_commit: CommitObserver | None = None) -> None:
        self._url = url
        self._pool_size = pool_size
        self._command_timeout = command_timeout
        self._clock = clock
        self._on_commit = on_commit
        self._pool: asyncpg.Pool | None = None
        self._groups = InsertGroups(self._store_calls)
        self._job_locks = JobLocks(url, SERVER_SETTINGS)
        self._ingest_failures = IngestFailures()
        self._failing = False  # the last request failed for want of the database
        self._open = False

    def _now(self) -> str:
        return timeutil.format_utc(self._clock())

    # -- lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            # On a connection of its own without the per-statement timeout: an upgrade of a
            # large table, or waiting for another instance's, may take long.
            conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT_SECONDS,
                                         server_settings=SERVER_SETTINGS)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                # No floor of idle connections: asyncpg would keep trying (and logging a
                # traceback) to restore it throughout an outage.
                self._url, min_size=0, max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT_SECONDS, command_timeout=self._command_timeout,
                server_settings=SERVER_SETTINGS)
        except BaseException as exc:
            if self._pool is not None:
                self._pool.terminate()
                self._pool = None
            if isinstance(exc, DATABASE_ERRORS):
                raise unavailable(exc) from exc
            raise
        self._open = True

    async def close(self) -> None:
        if not self._open or self._pool is None:
            return
        self._open = False
        await self._job_locks.close()  # the jobs have stopped: another process may run them
        await self._groups.drain()  # every accepted signal is answered first
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self._pool.close()
        except DATABASE_ERRORS:  # a timeout too: whatever is left is cut off
            self._pool.terminate()
        self._pool = None

    # -- plumbing ---------------------------------------------------------------------------

    async def _run(self, work: Work[P, R], *args: Any, write: bool = False, ops: int = 1,
                   isolation: str | None = None, accepted: bool = False) -> R:
        """Run `work(conn, *args)` on a pooled connection: in a transaction when it writes or
        an isolation level is given, again after a deadlock, and with every database failure
        as StoreUnavailable. `accepted` work was taken on before `close` and still runs."""
        if self._pool is None or not (self._open or accepted):
            raise StoreUnavailable("the store is not open")
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            started = time.perf_counter()
            try:
                # A connection that broke (or timed out, and whose cancellation failed) is
                # closed by asyncpg, and the pool opens a new one in its place.
                async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
                    if not write and isolation is None:
                        result = await work(conn, *args)
                    else:
                        async with conn.transaction(isolation=isolation or "read_committed",
                                                    readonly=not write):
                            result = await work(conn, *args)
            except DATABASE_ERRORS as exc:
                if worth_retrying(exc) and attempt < TRANSACTION_ATTEMPTS:
                    log.info("transaction retried after %s", exc)
                    continue
                error = unavailable(exc)
                self._note_failure(error)
                raise error from exc
            self._note_success()
            if write and self._on_commit is not None:
                self._on_commit(ops, time.perf_counter() - started)
            return result
        raise AssertionError("unreachable")

    def _note_failure(self, error: StoreUnavailable) -> None:
        # Once per outage, not once per request: every refused request is logged already.
        if not self._failing and not isinstance(error, RefusedData):
            self._failing = True
            log.error("database unavailable: %s", error)

    def _note_success(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("database available again")

    async def _write(self, work: Work[P, R], *args: Any, ops: int = 1) -> R:
        return await self._run(work, *args, write=True, ops=ops)

    async def _read(self, work: Work[P, R], *args: Any) -> R:
        return await self._run(work, *args)

    async def _store_calls(self, calls: Calls) -> list[list[bool]]:
        return await self._run(_insert_calls, calls, self._now(), write=True, ops=len(calls),
                               accepted=True)

    # -- ingest and triage ------------------------------------------------------------------

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        if not self._open:
            raise StoreUnavailable("the store is not open")
        try:
            stored = await self._groups.insert(signals)
        except StoreUnavailable as exc:
            if not isinstance(exc, RefusedData):  # one bad signal is no sick database
                self._ingest_failures.failed(str(exc))
            raise
        self._ingest_failures.stored()
        return stored

    async def record_heartbeats(self, beats: list[Heartbeat], history: HistoryRule) -> None:
        await self._write(writes.record_heartbeats, beats, history)

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        return await self._write(writes.set_status, signal_ids, status, note, actor,
                                 self._now())

    async def set_status_matching(self, query: SignalFilter, status: str, note: str | None,
                                  actor: str, limit: int) -> tuple[int, bool]:
        newest = await self._read(reads.max_seq)  # what is stored meanwhile is not triaged

        async def next_ids(count: int) -> list[str]:
            return await self._read(reads.matching_ids, query, status, newest, count)

        async def change(ids: list[str]) -> int:
            result = await self._write(functools.partial(writes.set_status, only_changes=True),
                                       ids, status, note, actor, self._now())
            return result.changed

        return await triage_in_chunks(next_ids, change, limit)

    async def list_signals(self, query: SignalFilter) -> SignalPage:
        return await self._read(reads.list_signals, query)

    async def signal_groups(self, query: SignalFilter) -> GroupPage:
        return await self._run(reads.signal_groups, query, isolation="repeatable_read")

    async def get_signal(self, signal_id: str) -> dict[str, Any] | None:
        return await self._read(reads.get_signal, signal_id)

    async def list_agents(self, query: AgentFilter) -> list[dict[str, Any]]:
        return await self._read(reads.list_agents, query)

    async def agent_history(self, agent_id: str, since: str, until: str) -> AgentHistory | None:
        return await self._run(reads.agent_history, agent_id, since, until,
                               isolation="repeatable_read")

    async def stats(self) -> dict[str, Any]:
        return await self._run(reads.stats, self._clock(), isolation="repeatable_read")

    async def signal_volume(self, since: str, until: str,
                            bucket_seconds: int) -> dict[int, dict[str, int]]:
        return await self._read(reads.signal_volume, since, until, bucket_seconds)

    async def first_signal_ts(self, not_before: str | None = None) -> str | None:
        return await self._read(reads.first_signal_ts, not_before)

    # -- operations -------------------------------------------------------------------------

    async def check_writable(self) -> None:
        if not self._open:
            raise StoreUnavailable("the store is not open")
        self._ingest_failures.check()
        await self._write(writes.write_probe, self._now())

    async def size_bytes(self) -> int:
        return await self._read(maintenance.size_bytes)

    # -- maintenance ------------------------------------------------------------------------

    async def mark_stale_agents(self, cutoff: str, alert: AlertBuilder,
                                summary: SummaryBuilder | None = None) -> list[str]:
        return await self._write(writes.mark_stale, cutoff, alert, summary, self._now())

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        return await self._write(writes.prune_heartbeats, cutoff, limit)

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        return await self._write(writes.prune_signals, cutoff, limit)

    async def compact(self) -> None:
        await self._read(maintenance.compact)  # VACUUM runs outside any transaction

    async def unshipped(self, limit: int, after: ForwardPosition | None = None) -> ForwardBatch:
        return await self._run(reads.unshipped, limit, after, isolation="repeatable_read")

    async def mark_shipped(self, signal_ids: list[str], position: ForwardPosition) -> None:
        await self._write(writes.mark_shipped, signal_ids, position, self._now())

    async def forward_backlog(self, severities: tuple[str, ...], *,
                              include_silenced: bool = True) -> int:
        return await self._read(reads.forward_backlog, severities, include_silenced)

    # -- silences ---------------------------------------------------------------------------

    async def create_silence(self, silence: NewSilence,
                             resolve_matching: bool) -> tuple[Silence, int]:
        return await self._write(writes.create_silence, silence, resolve_matching, self._now())

    async def count_open_matching(self, matchers: Matchers) -> int:
        return await self._read(reads.count_open_matching, matchers)

    async def expire_silence(self, silence_id: int, actor: str) -> Silence | None:
        return await self._write(writes.expire_silence, silence_id, actor, self._now())

    async def list_silences(self, active_at: str | None = None,
                            limit: int = 1000) -> list[Silence]:
        return await self._read(reads.list_silences, active_at, limit)

    async def silences_version(self) -> int:
        return await self._read(reads.silences_version)

    # -- background jobs --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def job_lock(self, name: str) -> AsyncIterator[bool]:
        if not self._open:
            raise StoreUnavailable("the store is not open")
        async with self._job_locks.hold(name) as held:
            yield held

    async def record_job_run(self, run: JobRun) -> None:
        await self._write(writes.record_job_run, run)

    async def job_records(self) -> dict[str, JobRecord]:
        return await self._read(reads.job_records)

    # -- agent connection problems ----------------------------------------------------------

    async def add_connection_problems(self, problems: list[ConnectionProblem]) -> None:
        await self._write(writes.add_connection_problems, problems)

    async def connection_problems(self, since: str, limit: int) -> list[dict[str, Any]]:
        return await self._read(reads.connection_problems, since, limit)

    async def prune_connection_problems(self, cutoff: str) -> int:
        return await self._write(writes.prune_connection_problems, cutoff)

    # -- console sessions -------------------------------------------------------------------

    async def create_session(self, session: ConsoleSession, keep: int) -> None:
        await self._write(writes.create_session, session, keep)

    async def get_session(self, token_hash: bytes, now: str) -> ConsoleSession | None:
        return await self._read(reads.get_session, token_hash, now)

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write(writes.delete_session, token_hash)

    async def prune_sessions(self, now: str) -> int:
        return await self._write(writes.prune_sessions, now)

    # -- keys -------------------------------------------------------------------------------

    async def keys_version(self) -> int:
        return await self._read(reads.keys_version)

    async def valid_keys(self, now: str) -> tuple[list[AgentKey], list[AnalystKey]]:
        return await self._run(reads.valid_keys, now, isolation="repeatable_read")

    async def create_agent_keys(self, keys: list[NewAgentKey]) -> list[AgentKey]:
        return await self._write(writes.create_agent_keys, keys, self._now())

    async def rotate_agent_key(self, key_id: str, new: NewAgentKey,
                               old_valid_until: str) -> AgentKey | None:
        return await self._write(writes.rotate_agent_key, key_id, new, old_valid_until,
                                 self._now())

    async def revoke_agent_key(self, key_id: str, actor: str) -> AgentKey | None:
        return await self._write(writes.revoke_agent_key, key_id, actor, self._now())

    async def list_agent_keys(self, host_id: str | None = None,
                              limit: int | None = None) -> list[AgentKey]:
        return await self._read(reads.list_agent_keys, host_id, limit)

    async def record_key_use(self, uses: list[KeyUse]) -> None:
        await self._write(writes.record_key_use, uses)

    async def create_analyst_key(self, key: NewAnalystKey) -> AnalystKey:
        return await self._write(writes.create_analyst_key, key, self._now())

    async def list_analyst_keys(self) -> list[AnalystKey]:
        return await self._read(reads.list_analyst_keys)

    async def revoke_analyst_key(self, key_id: str, actor: str) -> AnalystKey | None:
        return await self._write(writes.revoke_analyst_key, key_id, actor, self._now())

    async def known_agents(self, agent_ids: list[str]) -> set[str]:
        return await self._read(reads.known_agents, agent_ids)


async def _insert_calls(conn: asyncpg.Connection, calls: Calls, now: str) -> list[list[bool]]:
    return stored_flags(calls, await writes.insert_new_signals(conn, first_occurrences(calls),
                                                               now))


