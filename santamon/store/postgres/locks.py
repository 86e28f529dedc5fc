"""Which process runs each background job: a session-level advisory lock per job, all of one
process's held on a connection of its own (never a pooled one, which would carry a lock off
to whatever borrows it next).

PostgreSQL releases a session's advisory locks when the session ends, so a process that exits
or dies gives its jobs up by itself: its connection closes, and another process's next try
takes them. A holder that vanishes without closing its connection (its machine lost power, a
network partition) is noticed by the server's TCP keepalives, in about LOCK_DEAD_PEER_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from .errors import DATABASE_ERRORS, unavailable
from .schema import advisory_key

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 5.0  # connecting, and each round trip on the lock connection
# The server probes an idle connection after 10 s and gives up after 3 unanswered probes 5 s
# apart, or after 25 s of unacknowledged data: then the dead holder's locks are free.
LOCK_DEAD_PEER_SECONDS = 25
KEEPALIVE_SETTINGS = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                      "tcp_keepalives_count": "3",
                      "tcp_user_timeout": str(LOCK_DEAD_PEER_SECONDS * 1000)}


def job_lock_key(name: str) -> int:
    return advisory_key(f"santamon job {name}")


class JobLocks:
    def __init__(self, url: str, server_settings: dict[str, str]) -> None:
        self._url = url
        self._server_settings = {**server_settings, **KEEPALIVE_SETTINGS,
                                 "application_name": "santamon job locks"}
        self._conn: asyncpg.Connection | None = None
        self._held: set[str] = set()
        self._guard = asyncio.Lock()  # a connection takes one command at a time

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[bool]:
        yield await self._take(name)

    async def _take(self, name: str) -> bool:
        async with self._guard:
            reused = self._conn is not None
            try:
                return await self._try(name)
            except DATABASE_ERRORS as exc:
                self._lost(exc)
                if not reused:
                    raise unavailable(exc) from exc
            # The old connection broke, not necessarily the database: a new one takes the lock
            # again if no other process took it meanwhile.
            try:
                return await self._try(name)
            except DATABASE_ERRORS as exc:
                self._lost(exc)
                raise unavailable(exc) from exc

    async def _try(self, name: str) -> bool:
        if self._conn is None or self._conn.is_closed():
            if self._held:  # the session that held them is gone, and its locks with it
                self._lost(ConnectionError("the connection was closed"))
            self._conn = await asyncpg.connect(self._url, timeout=LOCK_TIMEOUT_SECONDS,
                                               server_settings=self._server_settings)
        if name in self._held:
            # A session lock lasts as long as its session: one round trip proves the session,
            # and so the lock, are still there.
            await self._conn.fetchval("SELECT 1", timeout=LOCK_TIMEOUT_SECONDS)
            return True
        if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", job_lock_key(name),
                                     timeout=LOCK_TIMEOUT_SECONDS):
            self._held.add(name)
            log.info("this process now runs job %s", name)
            return True
        return False

    def _lost(self, exc: BaseException) -> None:
        """The connection broke (or cannot be trusted): whatever it held may be another
        process's by now."""
        if self._held:
            log.warning("gave up running jobs %s: their lock connection failed (%s); another "
                        "process may run them now", ", ".join(sorted(self._held)), exc)
        self._held.clear()
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        """Release every lock by ending the session that holds them."""
        async with self._guard:
            self._held.clear()
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    await conn.close(timeout=LOCK_TIMEOUT_SECONDS)
                except DATABASE_ERRORS:
                    conn.terminate()
