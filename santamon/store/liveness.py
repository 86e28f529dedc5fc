"""Heartbeats acknowledged at once and written together: each agent's latest heartbeat waits
in memory, and all of them go to the store in one small transaction per interval.

Every agent beats every 30 s, so at fleet scale heartbeats are most of the traffic; written one
transaction each, they were most of what the server wrote to disk. Liveness only needs each
agent's latest heartbeat, so one is acknowledged as soon as it is held here, the latest per
agent wins, and a crash loses at most the last interval of them (the agents' next heartbeats
restore it). Signals never come this way: they keep their durable commit.

What must see every heartbeat acknowledged so far (the stale check, the agents API) calls
`flush()` first. While the store cannot take them, heartbeats are refused rather than
acknowledged into nothing. Only the store's contract is used, so this works over any engine; several
servers may share one database, since a store never lets an older heartbeat replace a newer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .. import timeutil
from ..tasks import cancel_and_wait
from .base import Heartbeat, HistoryRule, Store, StoreUnavailable

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self, store: Store, *, interval: float, history: HistoryRule,
                 clock: Callable[[], int] = timeutil.now_ns) -> None:
        self._store = store
        self._interval = interval
        self._history = history
        self._clock = clock
        self._pending: dict[str, Heartbeat] = {}
        self._lock = asyncio.Lock()  # one flush at a time, so heartbeats land in order
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def pending(self) -> int:
        """Agents whose latest heartbeat is acknowledged but not yet written."""
        return len(self._pending)

    def beat(self, agent_id: str, timestamp: str, *, version: str | None,
             os_version: str | None, uptime_seconds: float | None,
             auth: str | None = None) -> None:
        """Take a heartbeat received now; it replaces the agent's pending one. Raises
        StoreUnavailable while the last flush failed: it would not be written either."""
        if self._failing:
            raise StoreUnavailable("heartbeats cannot be written right now")
        self._pending[agent_id] = Heartbeat(
            agent_id, timestamp, timeutil.format_utc(self._clock()), version=version,
            os_version=os_version, uptime_seconds=uptime_seconds, auth=auth)

    async def flush(self) -> None:
        """Write every heartbeat taken so far. Raises StoreUnavailable when the store cannot
        take them; they are then kept for the next try (unless a newer one came meanwhile),
        and new ones are refused until a flush succeeds."""
        async with self._lock:
            if not self._pending:
                return
            beats, self._pending = self._pending, {}
            try:
                await self._store.record_heartbeats(list(beats.values()), self._history)
            except BaseException as exc:
                for agent_id, beat in beats.items():
                    self._pending.setdefault(agent_id, beat)
                self._failing = isinstance(exc, StoreUnavailable) or self._failing
                raise
            self._failing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="santamon-liveness")

    async def stop(self) -> None:
        """No more flushes on the timer; write what is pending (logged if it cannot be)."""
        await cancel_and_wait(self._task)
        self._task = None
        try:
            await self.flush()
        except StoreUnavailable as exc:
            log.error("stopping: the latest heartbeats of %d agent(s) were not written: %s",
                      self.pending, exc)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            was_failing = self._failing
            try:
                await self.flush()
            except StoreUnavailable as exc:
                if not was_failing:
                    log.warning("heartbeats cannot be written (kept, refused, retried every "
                                "%gs): %s", self._interval, exc)
            else:
                if was_failing:
                    log.info("heartbeats are written again")
