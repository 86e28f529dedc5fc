"""Agent connection problems, counted in memory and written in small batches.

A flood of failed handshakes must not become a flood of writes: a failure only adds to a
counter per (hour, client address, kind); every FLUSH_SECONDS the counters that moved are added
to the store in one transaction. Every process does so for itself, and the store adds their
counts up, so several workers and instances (and restarts) show one picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from .. import timeutil
from ..domain.problems import KINDS, OTHER_CLIENTS, clean_detail, hour_of
from ..store import ConnectionProblem, Store, StoreUnavailable

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0
# Distinct addresses one process counts per hour, and counters it holds unwritten (four hours'
# worth: the database may be down for a while); beyond either, counts go to OTHER_CLIENTS.
MAX_CLIENTS_PER_HOUR = 5000
MAX_PENDING = 4 * (MAX_CLIENTS_PER_HOUR + 1) * len(KINDS)

Key = tuple[str, str, str]  # (hour, client, kind)


@dataclass(slots=True)
class _Count:
    count: int
    last_seen: str
    detail: str  # as given: cleaned only when written, and only the last one


class ConnectionProblems:
    def __init__(self, store: Store, clock: Callable[[], int] = timeutil.now_ns, *,
                 interval: float = FLUSH_SECONDS,
                 max_clients_per_hour: int = MAX_CLIENTS_PER_HOUR,
                 max_pending: int = MAX_PENDING) -> None:
        self._store, self._clock, self._interval = store, clock, interval
        self._max_clients, self._max_pending = max_clients_per_hour, max_pending
        self._pending: dict[Key, _Count] = {}
        self._hour = ""
        self._clients: set[str] = set()  # counted this hour
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def record(self, client: str | None, kind: str, detail: str) -> None:
        """Count one problem of `kind` (domain.problems.KINDS) from `client`; cheap, never
        waits and never fails. Written within FLUSH_SECONDS."""
        now = self._clock()
        hour = hour_of(now)
        if hour != self._hour:
            self._hour, self._clients = hour, set()
        client = client or "unknown"
        if client not in self._clients:
            if len(self._clients) < self._max_clients:
                self._clients.add(client)
            else:
                client = OTHER_CLIENTS
        self._add((hour, client, kind), _Count(1, timeutil.format_utc(now), detail))

    def _add(self, key: Key, count: _Count) -> None:
        entry = self._pending.get(key)
        if entry is None and len(self._pending) >= self._max_pending:
            key = (key[0], OTHER_CLIENTS, key[2])
            entry = self._pending.get(key)
        if entry is None:
            self._pending[key] = count
            return
        entry.count += count.count
        if count.last_seen >= entry.last_seen:
            entry.last_seen, entry.detail = count.last_seen, count.detail

    async def flush(self) -> None:
        """Write what was counted since the last write. Raises StoreUnavailable if the store
        cannot take it; the counts then stay for the next attempt."""
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                await self._store.add_connection_problems([
                    ConnectionProblem(hour, client, kind, entry.count, entry.last_seen,
                                      clean_detail(entry.detail))
                    for (hour, client, kind), entry in batch.items()])
            except BaseException:
                for key, entry in batch.items():
                    self._add(key, entry)
                raise

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="santamon-connection-problems")

    async def stop(self) -> None:
        """Stop writing periodically, then write what is left (once, if the store can)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        with contextlib.suppress(StoreUnavailable):
            await self.flush()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            try:
                await self.flush()
            except StoreUnavailable as exc:
                if not self._failing:  # once per outage: the store logs its own failures
                    log.warning("agent connection problems not written yet (will retry): %s",
                                exc)
                self._failing = True
            else:
                self._failing = False
