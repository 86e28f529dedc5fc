"""The background jobs as one unit: started after the store and the HTTP session exist,
stopped (waiting a bounded time for running jobs) before either closes.

Every process runs the scheduler; a job does its work only in the process that holds its lock
in the store (board.py), so with several processes on one database each job still runs once
per interval, and another process takes it over when its holder dies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .. import timeutil
from ..config import Settings
from ..store import Liveness, Store
from .board import JobBoard, JobState
from .forwarding import Forwarder, build_sinks
from .retention import prune
from .stale import check_stale_agents

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
# Shutdown lets a running job finish (a forwarding delivery, a retention transaction) for
# this long, then cancels it; the unit's TimeoutStopSec leaves room for it.
STOP_GRACE_SECONDS = 10.0


class Jobs:
    def __init__(self, store: Store, liveness: Liveness, settings: Settings,
                 http: aiohttp.ClientSession, clock: Callable[[], int] = timeutil.now_ns, *,
                 instance: str) -> None:
        self._store = store
        self.board = JobBoard(store, instance, clock)
        sinks = build_sinks(settings, http)
        self.forwarder = Forwarder(store, sinks, min_severity=settings.forward_min_severity,
                                   base_delay=settings.forward_interval,
                                   forward_silenced=settings.forward_silenced)
        if not sinks:
            log.info("forwarding is off: set SANTAMON_FORWARD_WEBHOOK_URL or "
                     "SANTAMON_FORWARD_FILE to ship signals downstream")
        started_ns = clock()
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        jobs = [
            (JobState("stale-agents", "mark silent agents stale and raise AGENT-STALE alerts",
                      settings.stale_check_interval),
             lambda: check_stale_agents(
                 store, liveness, settings.stale_after, started_ns, clock,
                 summary_over=settings.stale_summary_threshold,
                 # Only PostgreSQL is shared by other processes, whose heartbeats wait there.
                 held_elsewhere=settings.heartbeat_flush_interval if settings.database_url
                 else 0.0)),
            (JobState("retention", "prune old heartbeats and resolved signals, then compact",
                      settings.retention_interval),
             lambda: prune(store, settings, clock)),
            (JobState("forward", "ship new signals to the configured sinks",
                      settings.forward_interval, enabled=bool(sinks)),
             self.forwarder.run),
        ]
        for state, run in jobs:
            monitored = self.board.register(state, run)
            if state.enabled:
                self._scheduler.add_job(
                    monitored, IntervalTrigger(seconds=state.interval_seconds), id=state.id,
                    name=state.description, replace_existing=True)

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """No new runs; running ones get `grace` seconds to finish, then are cancelled."""
        if not self._scheduler.running:
            return
        # Paused first: shutting the scheduler down cancels the runs still going.
        self._scheduler.pause()
        running = set(self.board.running)
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                log.warning("stopping: cancelling a job run still going after %gs", grace)
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._scheduler.shutdown(wait=False)

    async def snapshot(self) -> list[dict[str, Any]]:
        """Each job's last run, by whichever process ran it (as the store recorded it, so every
        process answers the same), and when this process tries it next, for GET /jobs."""
        records = await self._store.job_records()
        jobs = []
        for state in self.board.jobs.values():
            job = self._scheduler.get_job(state.id) if self._scheduler.running else None
            next_run = job.next_run_time if job else None
            entry = {**asdict(state), "next_run": timeutil.format_utc(
                int(next_run.timestamp() * 1e9)) if next_run else None}
            if (record := records.get(state.id)) is not None:
                last = record.last
                entry.update(last_run=last.started_at, last_outcome=last.outcome,
                             last_message=last.message,
                             last_duration_seconds=last.duration_seconds,
                             instance=last.instance, runs=record.runs,
                             failures=record.failures,
                             consecutive_failures=record.consecutive_failures)
            jobs.append(entry)
        return jobs
