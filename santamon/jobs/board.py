"""What each background job last did: for GET /jobs and for the logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .. import timeutil

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from .forwarding import Forwarder

log = logging.getLogger(__name__)


class JobSkipped(Exception):
    """Raised by a job that chose not to run this time (for example, backing off)."""


@dataclass
class JobState:
    id: str
    description: str
    interval_seconds: float
    enabled: bool = True
    last_run: str | None = None
    last_outcome: str | None = None  # "ok" or "failed"
    last_message: str | None = None
    last_duration_seconds: float | None = None
    consecutive_failures: int = 0
    runs: int = 0
    failures: int = 0


class JobBoard:
    """Runs jobs through one wrapper that records and logs how each run went."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobState] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.forwarder: Forwarder | None = None

    def register(self, state: JobState, run: Callable[[], Awaitable[str]]
                 ) -> Callable[[], Awaitable[None]]:
        self.jobs[state.id] = state

        async def monitored() -> None:
            started = time.monotonic()
            state.last_run = timeutil.utc_now()
            state.runs += 1
            try:
                state.last_message = await run()
            except JobSkipped as skip:
                state.last_outcome, state.last_message = "skipped", str(skip)
            except asyncio.CancelledError:
                # Shutdown cancels a running job; what it queued to the store still commits
                # whole, and the next start picks up where it stopped.
                state.last_outcome, state.last_message = "cancelled", "stopped by shutdown"
                return
            except Exception as exc:
                state.last_outcome = "failed"
                state.last_message = str(exc) or type(exc).__name__
                state.failures += 1
                state.consecutive_failures += 1
                log.error("job %s failed (%d in a row): %s", state.id,
                          state.consecutive_failures, state.last_message)
            else:
                state.last_outcome = "ok"
                state.consecutive_failures = 0
            finally:
                state.last_duration_seconds = round(time.monotonic() - started, 6)

        return monitored

    def snapshot(self) -> list[dict[str, Any]]:
        jobs = []
        for state in self.jobs.values():
            job = self.scheduler.get_job(state.id) if self.scheduler else None
            next_run = job.next_run_time if job else None
            jobs.append({**asdict(state), "next_run": timeutil.format_utc(
                int(next_run.timestamp() * 1e9)) if next_run else None})
        return jobs
