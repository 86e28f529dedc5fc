"""The active silences, held in memory so that ingest checks each signal without a query.

A change made through this instance reloads the cache before its request is answered; a
change made by another instance sharing the database is seen within POLL_SECONDS, through
the store's version counter. With no active silence, checking a signal is one test of an
empty list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .. import timeutil
from ..domain.silences import Silence, first_match, maintenance_window
from ..store import Store, StoreUnavailable
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


class SilenceCache:
    def __init__(self, store: Store, clock: Callable[[], int],
                 poll_seconds: float = POLL_SECONDS) -> None:
        self._store, self._clock, self._poll_seconds = store, clock, poll_seconds
        self._silences: list[Silence] = []
        self._version: int | None = None
        self._poller: asyncio.Task[None] | None = None

    def _now(self) -> str:
        return timeutil.format_utc(self._clock())

    async def start(self) -> None:
        await self.reload()
        self._poller = asyncio.create_task(self._poll(), name="santamon-silences")

    async def stop(self) -> None:
        await cancel_and_wait(self._poller)

    async def reload(self) -> None:
        # The version first: a change landing in between makes the next poll load again.
        version = await self._store.silences_version()
        self._silences = await self._store.list_silences(active_at=self._now())
        self._version = version

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                if await self._store.silences_version() != self._version:
                    await self.reload()
            except StoreUnavailable as exc:
                log.warning("could not check for changed silences: %s", exc)
            except Exception:  # the loop must outlive a bug: ingest relies on it
                log.exception("checking for changed silences failed")

    def match(self, rule_id: str, host_id: str, severity: str, title: str) -> int | None:
        """The id of the active silence this signal matches, if any."""
        if not self._silences:
            return None
        silence = first_match(self._silences, self._now(), rule_id, host_id, severity, title)
        return silence.id if silence else None

    def maintenance_until(self, agent_id: str) -> str | None:
        if not self._silences:
            return None
        window = maintenance_window(self._silences, self._now(), agent_id)
        return window.end if window else None
