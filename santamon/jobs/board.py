"""What each background job last did, for GET /jobs, /metrics and the logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import timeutil

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
    last_outcome: str | None = None  # "ok", "failed", "skipped" or "cancelled"
    last_message: str | None = None
    last_duration_seconds: float | None = None
    consecutive_failures: int = 0
    runs: int = 0
    failures: int = 0


class JobBoard:
    """Runs jobs through one wrapper that records and logs how each run went, and knows
    which runs are still going, so that shutdown can wait for them."""

    def __init__(self, clock: Callable[[], int] = timeutil.now_ns) -> None:
        self.jobs: dict[str, JobState] = {}
        self.running: set[asyncio.Task[None]] = set()
        self._clock = clock

    def register(self, state: JobState, run: Callable[[], Awaitable[str]]
                 ) -> Callable[[], Awaitable[None]]:
        self.jobs[state.id] = state

        async def monitored() -> None:
            task = asyncio.current_task()
            assert task is not None
            self.running.add(task)
            started = time.monotonic()
            state.last_run = timeutil.format_utc(self._clock())
            state.runs += 1
            try:
                state.last_message = await run()
            except JobSkipped as skip:
                state.last_outcome, state.last_message = "skipped", str(skip)
            except asyncio.CancelledError:
                # Shutdown cancels a run that outlived its grace; what it queued to the store
                # still commits whole, and the next start picks up where it stopped.
                state.last_outcome, state.last_message = "cancelled", "stopped by shutdown"
                raise
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
                self.running.discard(task)

        return monitored

    def collector(self) -> Collector:
        return _JobCollector(self)


class _JobCollector(Collector):
    def __init__(self, board: JobBoard) -> None:
        self._board = board

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "santamon_job_runs", "Background job runs, by job.", labels=["job"])
        failures = CounterMetricFamily(
            "santamon_job_failures", "Background job runs that failed, by job.", labels=["job"])
        in_a_row = GaugeMetricFamily(
            "santamon_job_consecutive_failures", "Failures since the job last succeeded.",
            labels=["job"])
        duration = GaugeMetricFamily(
            "santamon_job_last_duration_seconds", "How long the job's last run took.",
            labels=["job"])
        for state in self._board.jobs.values():
            runs.add_metric([state.id], state.runs)
            failures.add_metric([state.id], state.failures)
            in_a_row.add_metric([state.id], state.consecutive_failures)
            if state.last_duration_seconds is not None:
                duration.add_metric([state.id], state.last_duration_seconds)
        yield from (runs, failures, in_a_row, duration)
