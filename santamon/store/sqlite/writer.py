"""The one writer: a thread of its own that commits whatever has queued up, as one transaction.

Every write is an operation object put on a queue. The thread takes all that has queued, lets
each kind of operation apply all of its queued instances in one go (so many inserts become one
statement), commits, and only then answers each caller on the event loop. Many concurrent
ingests share one commit and one fsync, a caller never hears "stored" before its row is
durable, and the thread never waits for the event loop between commits (datasette's model).
The SQL itself lives with the operations (writes.py).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from ..base import StoreUnavailable

log = logging.getLogger(__name__)

MAX_OPS_PER_COMMIT = 2000

CommitObserver = Callable[[int, float], None]  # (operations in the commit, seconds it took)


class WriteOp(Protocol):
    """A write. Every queued operation of one class is applied by one call of `apply`."""

    # True for work that must run outside a transaction (a checkpoint): it runs alone, after
    # the commit of the operations queued with it.
    outside_transaction: ClassVar[bool]

    @classmethod
    def apply(cls, conn: sqlite3.Connection, ops: list[Self], now: str) -> list[Any]:
        """Apply `ops` in order; one result per op."""


Outcome = tuple[WriteOp, "asyncio.Future[Any]", Any, BaseException | None]
_STOP = object()


class Writer:
    def __init__(
        self,
        path: Path,
        pragmas: list[str],
        loop: asyncio.AbstractEventLoop,
        *,
        now: Callable[[], str],
        after_commit: Callable[[], None] | None = None,
        on_commit: CommitObserver | None = None,
    ) -> None:
        """`now` stamps each transaction; `after_commit` may raise StoreUnavailable to refuse
        to acknowledge what was just committed (the file was deleted under us)."""
        self._path, self._pragmas, self._loop = path, pragmas, loop
        self._now, self._after_commit, self._on_commit = now, after_commit, on_commit
        self._ops: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="santamon-writer", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failed is not None:
            raise self._failed

    async def submit(self, op: WriteOp) -> Any:
        future = self._loop.create_future()
        self._ops.put((op, future))
        return await future

    async def stop(self) -> None:
        """Commit everything queued so far, then close the connection."""
        if self._thread.is_alive():
            self._ops.put(_STOP)
            await asyncio.to_thread(self._thread.join)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            # The connection begins a transaction (BEGIN IMMEDIATE) by itself at the first
            # write; reads before it see the same data, since this is the only writer.
            conn = sqlite3.connect(self._path, isolation_level="IMMEDIATE")
            for setting in self._pragmas:
                conn.execute(f"PRAGMA {setting}").fetchall()
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        with closing(conn):
            stopping = False
            while not stopping:
                first = self._ops.get()
                if first is _STOP:
                    break
                batch = [first]
                while len(batch) < MAX_OPS_PER_COMMIT:
                    try:
                        item = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                try:
                    self._commit(conn, batch)
                except Exception as exc:  # a bug here must not leave callers waiting forever
                    log.exception("writer failed on a batch of %d operation(s)", len(batch))
                    error = StoreUnavailable(f"writer error: {exc}")
                    self._answer([(op, future, None, error) for op, future in batch], 0, 0.0)

    def _commit(self, conn: sqlite3.Connection, batch: list[tuple[WriteOp, Any]]) -> None:
        started = time.perf_counter()
        inside = [item for item in batch if not item[0].outside_transaction]
        outside = [item for item in batch if item[0].outside_transaction]
        outcomes: list[Outcome] = []
        committed = 0
        if inside:
            try:
                results = self._transaction(conn, [op for op, _ in inside])
            except Exception as exc:
                if len(inside) == 1:
                    outcomes.append((*inside[0], None, _unavailable(exc)))
                else:  # one bad operation must not fail the others: retry each on its own
                    for item in inside:
                        self._commit(conn, [item])
            else:
                error = self._refusal()
                outcomes += [(op, future, result, error)
                             for (op, future), result in zip(inside, results, strict=True)]
                committed = len(inside)
        if outcomes:  # before the work outside the transaction, which they need not wait for
            self._answer(outcomes, committed, time.perf_counter() - started)
            outcomes = []
        for op, future in outside:
            try:
                (result,) = type(op).apply(conn, [op], self._now())
                outcomes.append((op, future, result, None))
            except Exception as exc:
                outcomes.append((op, future, None, _unavailable(exc)))
        if outcomes:
            self._answer(outcomes, 0, time.perf_counter() - started)

    def _transaction(self, conn: sqlite3.Connection, ops: list[WriteOp]) -> list[Any]:
        now = self._now()
        groups: dict[type, list[WriteOp]] = {}
        for op in ops:
            groups.setdefault(type(op), []).append(op)
        results: dict[int, Any] = {}
        try:
            for kind, group in groups.items():
                outcome = kind.apply(conn, group, now)
                results.update(zip(map(id, group), outcome, strict=True))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return [results[id(op)] for op in ops]

    def _refusal(self) -> StoreUnavailable | None:
        if self._after_commit is None:
            return None
        try:
            self._after_commit()
        except StoreUnavailable as exc:
            return exc
        return None

    def _answer(self, outcomes: list[Outcome], committed: int, elapsed: float) -> None:
        try:
            self._loop.call_soon_threadsafe(self._settle, outcomes, committed, elapsed)
        except RuntimeError:  # the loop is gone: nobody is waiting for these answers
            log.warning("event loop closed; %d write result(s) undelivered", len(outcomes))

    # -- back on the event loop ---------------------------------------------------------------

    def _settle(self, outcomes: list[Outcome], committed: int, elapsed: float) -> None:
        if committed and self._on_commit is not None:
            self._on_commit(committed, elapsed)
        for _, future, result, error in outcomes:
            if future.done():  # the caller gave up waiting; the write stands
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _unavailable(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        log.error("write failed: %s", exc)
        return StoreUnavailable(str(exc))
    return exc
