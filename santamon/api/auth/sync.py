"""The key ring kept in step with the keys in the store, and their use recorded in batches.

Requests never wait for the store to find out who is calling: the ring answers from memory.
It is loaded before the service listens (a restart sees every change at once), reloaded right
after a change made through this process, and otherwise whenever the store's key version
moves, which is polled every couple of seconds: several processes sharing a database see a
key revoked by any of them within that time.

When each agent key was last used, and from where, is noted in memory and written every so
often in one transaction, so that a fleet shipping signals adds no write per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ... import timeutil
from ...store import KeyUse, Store, StoreUnavailable
from ...tasks import cancel_and_wait
from .keys import Caller, KeyRing

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
USE_FLUSH_SECONDS = 30.0


class KeySync:
    def __init__(self, store: Store, ring: KeyRing, clock: Callable[[], int], *,
                 poll_seconds: float = POLL_SECONDS,
                 flush_seconds: float = USE_FLUSH_SECONDS) -> None:
        self._store, self._ring, self._clock = store, ring, clock
        self._poll_seconds, self._flush_seconds = poll_seconds, flush_seconds
        self._version: int | None = None
        self._uses: dict[str, tuple[int, str | None]] = {}  # key id -> (ns, address)
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="santamon-key-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        with contextlib.suppress(StoreUnavailable):
            await self.flush()

    async def refresh(self) -> None:
        """Load the valid keys now. The version is read first: a change committed meanwhile
        moves it again, so the next poll loads once more rather than miss it."""
        version = await self._store.keys_version()
        agents, people = await self._store.valid_keys(timeutil.format_utc(self._clock()))
        self._ring.load(agents, people)
        self._version = version

    def used(self, caller: Caller, address: str | None) -> None:
        """Note that a stored agent key was used now (written by the next flush)."""
        if caller.key_id is not None:
            self._uses[caller.key_id] = (self._clock(), address)

    async def flush(self) -> None:
        uses, self._uses = self._uses, {}
        if not uses:
            return
        try:
            await self._store.record_key_use([
                KeyUse(key_id, timeutil.format_utc(ns), address)
                for key_id, (ns, address) in uses.items()])
        except StoreUnavailable:
            for key_id, use in uses.items():  # kept for the next flush, unless used since
                self._uses.setdefault(key_id, use)
            raise

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_flush = loop.time() + self._flush_seconds
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                if await self._store.keys_version() != self._version:
                    await self.refresh()
                if loop.time() >= next_flush:
                    next_flush = loop.time() + self._flush_seconds
                    await self.flush()
            except StoreUnavailable as exc:
                # The keys already loaded stay in force; this is tried again at the next poll.
                if not self._failing:
                    log.warning("cannot read the keys from the database (%s); the keys loaded "
                                "before stay in force until it answers again", exc)
                self._failing = True
            except Exception:  # a bug here must not stop revocations from being seen
                log.exception("key sync failed; trying again at the next poll")
            else:
                self._failing = False
