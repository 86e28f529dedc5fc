"""Concurrent ingests stored together: the SQLite writer's group commit, for PostgreSQL.

While one transaction of signals is being stored, the calls that arrive meanwhile wait; the
next transaction takes all of them as one INSERT. Under load a commit then carries many
signals, and the counter rows every insert updates (signal_counts and the like) are locked once
per group rather than once per request, which is what concurrent inserts would otherwise queue
on. Each caller hears back only after the commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from ...domain.signals import NewSignal
from .errors import RefusedData

MAX_SIGNALS_PER_TRANSACTION = 5000  # five full API batches

Calls = list[list[NewSignal]]
StoreCalls = Callable[[Calls], Awaitable[list[list[bool]]]]
Waiting = tuple[list[NewSignal], "asyncio.Future[list[bool]]"]


class InsertGroups:
    def __init__(self, store_calls: StoreCalls) -> None:
        """`store_calls` stores several calls' signals in one transaction and returns each
        call's flags (common.stored_flags)."""
        self._store_calls = store_calls
        self._waiting: deque[Waiting] = deque()
        self._storing: asyncio.Task[None] | None = None

    async def insert(self, signals: list[NewSignal]) -> list[bool]:
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((signals, future))
        if self._storing is None:
            self._storing = asyncio.create_task(self._store_waiting(),
                                                name="santamon-insert-groups")
        # A caller that stops waiting does not stop the transaction: its signals are stored
        # with the others, and the agent's retry finds them there.
        return await future

    async def drain(self) -> None:
        """Wait until every call made so far is answered."""
        if self._storing is not None:
            await asyncio.shield(self._storing)

    async def _store_waiting(self) -> None:
        try:
            while self._waiting:
                group: list[Waiting] = []
                count = 0
                while self._waiting and (not group or count + len(self._waiting[0][0])
                                         <= MAX_SIGNALS_PER_TRANSACTION):
                    item = self._waiting.popleft()
                    group.append(item)
                    count += len(item[0])
                await self._store(group)
        finally:
            self._storing = None

    async def _store(self, group: list[Waiting]) -> None:
        try:
            results = await self._store_calls([signals for signals, _ in group])
        except RefusedData as exc:
            if len(group) == 1:
                _fail(group, exc)
            else:  # one call's data must not fail the others: each goes on its own
                for item in group:
                    await self._store([item])
        except Exception as exc:  # every caller must hear back, whatever happened
            _fail(group, exc)
        else:
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():  # done: the caller stopped waiting
                    future.set_result(result)


def _fail(group: list[Waiting], error: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(error)
