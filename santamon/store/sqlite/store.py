"""The SQLite store: one group-commit writer thread for every write, a pool of aiosqlite readers
that under WAL never wait for it, and a maintenance connection for upgrades and checkpoints."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite

from ... import timeutil
from ...tasks import cancel_and_wait
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
    NameTaken,
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
from ..common import IngestFailures, triage_in_chunks
from . import maintenance, reads, writes
from .schema import migrate
from .writer import CommitObserver, WriteOp, Writer

log = logging.getLogger(__name__)

# Every connection; the writer adds its own below. A 200 means the row survives power loss
# too (synchronous=FULL): on this kind of machine NORMAL gained only ~4 % of ingest.
CONNECTION_PRAGMAS = ["busy_timeout = 10000", "synchronous = FULL", "foreign_keys = ON",
                      "temp_store = MEMORY"]
WRITER_PRAGMAS = [*CONNECTION_PRAGMAS, "cache_size = -32000",
                  # checkpoints run beside the writer (maintenance.py), not in its commits
                  "wal_autocheckpoint = 0"]
READER_PRAGMAS = [*CONNECTION_PRAGMAS, "cache_size = -8000",  # 8 MB each: RSS under 200 MB
                  "query_only = ON"]


class SQLiteStore:
    def __init__(self, path: str | Path, *, readers: int = 4,
                 clock: Callable[[], int] = timeutil.now_ns,
                 on_commit: CommitObserver | None = None) -> None:
        self.path = Path(path)
        self._clock = clock
        self._on_commit = on_commit
        self._reader_count = readers
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._connections: list[aiosqlite.Connection] = []
        self._writer: Writer | None = None
        self._maintenance: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._file: maintenance.FileIdentity | None = None
        self._open = False
        self._ingest_failures = IngestFailures()

    def _now(self) -> str:
        return timeutil.format_utc(self._clock())

    def _check_file(self) -> None:
        if self._file is not None:
            self._file.check()

    # -- lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await self._open_all()
        except BaseException:
            await self._release()  # no thread or connection may outlive a failed start
            raise
        self._open = True

    async def _open_all(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Plain sqlite3 first: aiosqlite leaves its thread to finish on its own when a connect
        # fails, too late for a process that is exiting because of it. A thread of its own,
        # gone when this is done, so a failed start leaves none behind.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            await asyncio.get_running_loop().run_in_executor(pool, maintenance.check_opens,
                                                             self.path)
        self._maintenance = await self._connect(CONNECTION_PRAGMAS)
        if await migrate(self._maintenance):
            await maintenance.analyze(self._maintenance)
        # WAL is a property of the file: set once, after any upgrade.
        await maintenance.pragma(self._maintenance, "journal_mode = WAL")
        self._writer = Writer(self.path, WRITER_PRAGMAS, asyncio.get_running_loop(),
                              now=self._now, after_commit=self._check_file,
                              on_commit=self._on_commit)
        await self._writer.start()
        for _ in range(self._reader_count):
            conn = await self._connect(READER_PRAGMAS)
            conn.row_factory = sqlite3.Row
            self._readers.put_nowait(conn)
        self._file = maintenance.FileIdentity(self.path)  # the WAL exists by now
        # Its checkpoints are PASSIVE and never wait; the TRUNCATE on close waits for readers
        # only a moment.
        await maintenance.pragma(self._maintenance,
                                 f"busy_timeout = {maintenance.CHECKPOINT_WAIT_MS}")
        self._checkpoints = asyncio.create_task(
            maintenance.checkpoint_forever(self._maintenance, self.path, self._restart_log),
            name="santamon-checkpoint")

    async def _connect(self, pragmas: list[str]) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._connections.append(conn)
        for setting in pragmas:
            await maintenance.pragma(conn, setting)
        return conn

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        await self._release()

    async def _release(self) -> None:
        if self._writer is not None:
            await self._writer.stop()  # commits everything already queued
        await cancel_and_wait(self._checkpoints)
        if self._maintenance is not None and self._writer is not None:
            await maintenance.finish(self._maintenance)
        for conn in self._connections:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await conn.close()
        self._connections.clear()

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        if not self._open:
            raise StoreUnavailable("the store is not open")
        conn = await self._readers.get()
        try:
            yield conn
        except sqlite3.Error as exc:
            log.error("read failed: %s", exc)
            raise StoreUnavailable(str(exc)) from exc
        finally:
            self._readers.put_nowait(conn)

    async def _restart_log(self) -> None:
        await self._write(maintenance.RestartLog())

    async def _write(self, op: WriteOp) -> Any:
        if not self._open or self._writer is None:
            raise StoreUnavailable("the store is not open")
        return await self._writer.submit(op)

    # -- ingest and triage ------------------------------------------------------------------

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        try:
            stored = await self._write(writes.InsertSignals(signals))
        except StoreUnavailable as exc:
            self._ingest_failures.failed(str(exc))
            raise
        self._ingest_failures.stored()
        return stored

    async def record_heartbeats(self, beats: list[Heartbeat], history: HistoryRule) -> None:
        await self._write(writes.RecordHeartbeats(beats, history))

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        return await self._write(writes.SetStatus(signal_ids, status, note, actor))

    async def set_status_matching(self, query: SignalFilter, status: str, note: str | None,
                                  actor: str, limit: int) -> tuple[int, bool]:
        async with self._reader() as conn:
            newest = await reads.max_seq(conn)  # what arrives meanwhile is not triaged

        async def next_ids(count: int) -> list[str]:
            async with self._reader() as conn:
                return await reads.matching_ids(conn, query, status, newest, count)

        async def change(ids: list[str]) -> int:
            result = await self._write(writes.SetStatus(ids, status, note, actor,
                                                        only_changes=True))
            return result.changed

        return await triage_in_chunks(next_ids, change, limit)

    async def list_signals(self, query: SignalFilter) -> SignalPage:
        async with self._reader() as conn:
            return await reads.list_signals(conn, query)

    async def signal_groups(self, query: SignalFilter) -> GroupPage:
        async with self._reader() as conn:
            return await reads.signal_groups(conn, query)

    async def get_signal(self, signal_id: str) -> dict[str, Any] | None:
        async with self._reader() as conn:
            return await reads.get_signal(conn, signal_id)

    async def list_agents(self, query: AgentFilter) -> list[dict[str, Any]]:
        async with self._reader() as conn:
            return await reads.list_agents(conn, query)

    async def agent_history(self, agent_id: str, since: str, until: str) -> AgentHistory | None:
        async with self._reader() as conn:
            return await reads.agent_history(conn, agent_id, since, until)

    async def stats(self) -> dict[str, Any]:
        async with self._reader() as conn:
            return await reads.stats(conn, self._clock())

    async def signal_volume(self, since: str, until: str,
                            bucket_seconds: int) -> dict[int, dict[str, int]]:
        async with self._reader() as conn:
            return await reads.signal_volume(conn, since, until, bucket_seconds)

    async def first_signal_ts(self, not_before: str | None = None) -> str | None:
        async with self._reader() as conn:
            return await reads.first_signal_ts(conn, not_before)

    # -- operations -------------------------------------------------------------------------

    async def check_writable(self) -> None:
        self._check_file()
        self._ingest_failures.check()
        await self._write(writes.ProbeWrite())

    async def size_bytes(self) -> int:
        return await asyncio.to_thread(maintenance.size_bytes, self.path)

    # -- maintenance ------------------------------------------------------------------------

    async def mark_stale_agents(self, cutoff: str, alert: AlertBuilder,
                                summary: SummaryBuilder | None = None) -> list[str]:
        return await self._write(writes.MarkStale(cutoff, alert, summary))

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        return await self._write(writes.PruneHeartbeats(cutoff, limit))

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        return await self._write(writes.PruneSignals(cutoff, limit))

    async def compact(self) -> None:
        await self._write(maintenance.Compact())

    async def unshipped(self, limit: int, after: ForwardPosition | None = None) -> ForwardBatch:
        async with self._reader() as conn:
            return await reads.unshipped(conn, limit, after)

    async def mark_shipped(self, signal_ids: list[str], position: int) -> None:
        await self._write(writes.MarkShipped(signal_ids, position))

    async def forward_backlog(self, severities: tuple[str, ...], *,
                              include_silenced: bool = True) -> int:
        async with self._reader() as conn:
            return await reads.forward_backlog(conn, severities, include_silenced)

    # -- silences ---------------------------------------------------------------------------

    async def create_silence(self, silence: NewSilence,
                             resolve_matching: bool) -> tuple[Silence, int]:
        return await self._write(writes.CreateSilence(silence, resolve_matching))

    async def count_open_matching(self, matchers: Matchers) -> int:
        async with self._reader() as conn:
            return await reads.count_open_matching(conn, matchers)

    async def expire_silence(self, silence_id: int, actor: str) -> Silence | None:
        return await self._write(writes.ExpireSilence(silence_id, actor))

    async def list_silences(self, active_at: str | None = None,
                            limit: int = 1000) -> list[Silence]:
        async with self._reader() as conn:
            return await reads.list_silences(conn, active_at, limit)

    async def silences_version(self) -> int:
        async with self._reader() as conn:
            return await reads.silences_version(conn)

    # -- background jobs --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def job_lock(self, name: str) -> AsyncIterator[bool]:
        # One process serves a SQLite file (more workers need PostgreSQL): it runs every job.
        yield True

    async def record_job_run(self, run: JobRun) -> None:
        await self._write(writes.RecordJobRun(run))

    async def job_records(self) -> dict[str, JobRecord]:
        async with self._reader() as conn:
            return await reads.job_records(conn)

    # -- agent connection problems ----------------------------------------------------------

    async def add_connection_problems(self, problems: list[ConnectionProblem]) -> None:
        await self._write(writes.AddConnectionProblems(problems))

    async def connection_problems(self, since: str, limit: int) -> list[dict[str, Any]]:
        async with self._reader() as conn:
            return await reads.connection_problems(conn, since, limit)

    async def prune_connection_problems(self, cutoff: str) -> int:
        return await self._write(writes.PruneConnectionProblems(cutoff))

    # -- console sessions -------------------------------------------------------------------

    async def create_session(self, session: ConsoleSession, keep: int) -> None:
        await self._write(writes.CreateSession(session, keep))

    async def get_session(self, token_hash: bytes, now: str) -> ConsoleSession | None:
        async with self._reader() as conn:
            return await reads.get_session(conn, token_hash, now)

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write(writes.DeleteSession(token_hash))

    async def prune_sessions(self, now: str) -> int:
        return await self._write(writes.PruneSessions(now))

    # -- keys -------------------------------------------------------------------------------

    async def keys_version(self) -> int:
        async with self._reader() as conn:
            return await reads.keys_version(conn)

    async def valid_keys(self, now: str) -> tuple[list[AgentKey], list[AnalystKey]]:
        async with self._reader() as conn:
            return await reads.valid_keys(conn, now)

    async def create_agent_keys(self, keys: list[NewAgentKey]) -> list[AgentKey]:
        return await self._write(writes.CreateAgentKeys(keys))

    async def rotate_agent_key(self, key_id: str, new: NewAgentKey,
                               old_valid_until: str) -> AgentKey | None:
        return await self._write(writes.RotateAgentKey(key_id, new, old_valid_until))

    async def revoke_agent_key(self, key_id: str, actor: str) -> AgentKey | None:
        return await self._write(writes.RevokeAgentKey(key_id, actor))

    async def list_agent_keys(self, host_id: str | None = None,
                              limit: int | None = None) -> list[AgentKey]:
        async with self._reader() as conn:
            return await reads.list_agent_keys(conn, host_id, limit)

    async def record_key_use(self, uses: list[KeyUse]) -> None:
        await self._write(writes.RecordKeyUse(uses))

    async def create_analyst_key(self, key: NewAnalystKey) -> AnalystKey:
        result = await self._write(writes.CreateAnalystKey(key))
        if isinstance(result, NameTaken):
            raise result
        return result

    async def list_analyst_keys(self) -> list[AnalystKey]:
        async with self._reader() as conn:
            return await reads.list_analyst_keys(conn)

    async def revoke_analyst_key(self, key_id: str, actor: str) -> AnalystKey | None:
        return await self._write(writes.RevokeAnalystKey(key_id, actor))

    async def known_agents(self, agent_ids: list[str]) -> set[str]:
        async with self._reader() as conn:
            return await reads.known_agents(conn, agent_ids)
