"""The scheduler's place in the application's lifetime, and what each job last did."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ..api.keys import CLOCK, HTTP_SESSION, JOB_BOARD, SETTINGS, STORE
from .board import JobState
from .forwarding import Forwarder, build_sinks
from .retention import prune
from .stale import check_stale_agents

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Starts the jobs after the store and HTTP session exist; stops them before either closes."""
    settings, store, board, clock = app[SETTINGS], app[STORE], app[JOB_BOARD], app[CLOCK]
    started_ns = clock()
    sinks = build_sinks(settings, app[HTTP_SESSION])
    board.forwarder = Forwarder(store, sinks, min_severity=settings.forward_min_severity,
                                base_delay=settings.forward_interval)
    if not sinks:
        log.info("forwarding is off: set SANTAMON_FORWARD_WEBHOOK_URL or "
                 "SANTAMON_FORWARD_FILE to ship signals downstream")

    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
    jobs = [
        (JobState("stale-agents", "mark silent agents stale and raise AGENT-STALE alerts",
                  settings.stale_check_interval),
         lambda: check_stale_agents(store, settings.stale_after, started_ns, clock)),
        (JobState("retention", "prune old heartbeats and resolved signals, then compact",
                  settings.retention_interval),
         lambda: prune(store, settings, clock)),
        (JobState("forward", "ship new signals to the configured sinks",
                  settings.forward_interval, enabled=bool(sinks)),
         board.forwarder.run),
    ]
    for state, run in jobs:
        monitored = board.register(state, run)
        if state.enabled:
            scheduler.add_job(monitored, IntervalTrigger(seconds=state.interval_seconds),
                              id=state.id, name=state.description, replace_existing=True)
    scheduler.start()
    board.scheduler = scheduler
    yield
    # Running jobs are cancelled here; each store write they queued still commits whole.
    scheduler.shutdown(wait=False)
    board.scheduler = None

