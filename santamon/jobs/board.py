"""What each background job last did, for GET /jobs, /metrics and the logs; and which process
runs each job when several share the database (the store's job locks)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import timeutil
from ..store import JobRun, Store, StoreUnavailable

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
    instance: str | None = None  # the process that ran it last
    consecutive_failures: int = 0
    runs: int = 0
    failures: int = 0


class JobBoard:
    """Runs jobs through one wrapper that runs a job only in the process holding its lock,
    records and logs how each run went (in this process and in the store, for every process
    to report), and knows which runs are still going, so that shutdown can wait for them."""

    def __init__(self, store: Store, instance: str,
                 clock: Callable[[], int] = timeutil.now_ns) -> None:
        self.jobs: dict[str, JobState] = {}
        self.running: set[asyncio.Task[None]] = set()
        self.instance = instance
        self._store = store
        self._clock = clock

    def register(self, state: JobState, run: Callable[[], Awaitable[str]]
                 ) -> Callable[[], Awaitable[None]]:
        self.jobs[state.id] = state

        async def monitored() -> None:
            task = asyncio.current_task()
            assert task is not None
            self.running.add(task)
            started = time.monotonic()
            try:
                async with self._store.job_lock(state.id) as held:
                    if held:  # else another process runs this job
                        await self._run(state, run)
            except StoreUnavailable as exc:
                # Which process should run it cannot be told, so none may: a failed run.
                self._begin(state)
                self._failed(state, f"cannot tell which process runs this job: {exc}")
                state.last_duration_seconds = round(time.monotonic() - started, 6)
            finally:
                self.running.discard(task)

        return monitored

    def _begin(self, state: JobState) -> None:
        state.last_run = timeutil.format_utc(self._clock())
        state.instance = self.instance
        state.runs += 1

    def _failed(self, state: JobState, message: str) -> None:
        state.last_outcome, state.last_message = "failed", message
        state.failures += 1
        state.consecutive_failures += 1
        log.error("job %s failed (%d in a row): %s", state.id, state.consecutive_failures,
                  message)

    async def _run(self, state: JobState, run: Callable[[], Awaitable[str]]) -> None:
        started = time.monotonic()
        self._begin(state)
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
            self._failed(state, str(exc) or type(exc).__name__)
        else:
            state.last_outcome = "ok"
            state.consecutive_failures = 0
        finally:
            state.last_duration_seconds = round(time.monotonic() - started, 6)
        assert state.last_run is not None and state.last_outcome is not None
        try:
            await self._store.record_job_run(JobRun(
                state.id, self.instance, state.last_run, state.last_outcome,
                state.last_message, state.last_duration_seconds))
        except StoreUnavailable as exc:
            log.warning("the run of job %s could not be recorded: %s", state.id, exc)

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
