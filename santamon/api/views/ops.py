"""For operators: health, background jobs, metrics, the service's name and its API documents."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from ... import __version__, logs, metrics, timeutil
from ...domain.signals import SEVERITIES, STATUSES
from ...store import StoreUnavailable
from .. import static
from ..responses import json_response
from ..state import HEALTH, JOBS, LIVENESS, METRICS, OPENAPI, STORE

HEALTH_CACHE_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 5.0


async def jobs(request: web.Request) -> web.Response:
    jobs, store = request.app[JOBS], request.app[STORE]
    forwarder = jobs.forwarder
    snapshot = await jobs.snapshot()
    forward = next(job for job in snapshot if job["id"] == "forward")
    # The backoff is the forwarding process's own: unknown here when another one forwards.
    elsewhere = forward["instance"] not in (None, jobs.board.instance)
    forwarding: dict[str, object] = {
        "sinks": [sink.name for sink in forwarder.sinks],
        "min_severity": forwarder.severities[0],
        "backlog": await store.forward_backlog(forwarder.severities,
                                               include_silenced=forwarder.forward_silenced),
        "consecutive_failures": forward["consecutive_failures"],
        "retry_in_seconds": None if elsewhere else round(forwarder.retry_in, 3),
    }
    return json_response({"jobs": snapshot, "forwarding": forwarding})


async def health(request: web.Request) -> web.Response:
    """Proves the database takes a committed write, at most once a second."""
    cache = request.app[HEALTH]
    if time.monotonic() - cache.last_ok > HEALTH_CACHE_SECONDS:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                await request.app[STORE].check_writable()
        except (StoreUnavailable, TimeoutError) as exc:
            return json_response({"status": "unhealthy", "error": "database cannot be "
                                  "written", "detail": str(exc) or "timed out",
                                  "timestamp": timeutil.utc_now()}, status=503)
        cache.last_ok = time.monotonic()
    return json_response({"status": "healthy", "timestamp": timeutil.utc_now()})


async def index(request: web.Request) -> web.Response:
    endpoints = sorted({f"{route.method} {route.resource.canonical}"
                        for route in request.app.router.routes()
                        if route.method != "HEAD" and route.resource is not None})
    return json_response({"name": "Santamon Backend", "version": __version__,
                          "endpoints": endpoints})


async def prometheus_metrics(request: web.Request) -> web.Response:
    """Counters as they stand, plus gauges read now: agents and signals by status, forwarding
    backlog, database size, log records dropped."""
    registry, store = request.app[METRICS], request.app[STORE]
    forwarder = request.app[JOBS].forwarder
    with contextlib.suppress(StoreUnavailable, TimeoutError):
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await request.app[LIVENESS].flush()  # agents counted with every heartbeat so far
            counts = await store.stats()
            backlog = (await store.forward_backlog(
                forwarder.severities, include_silenced=forwarder.forward_silenced)
                if forwarder.sinks else None)
        for status in ("active", "stale"):
            registry.agents.labels(status=status).set(counts["agents"][status])
        for status in STATUSES:
            registry.signals.labels(status=status).set(counts["by_status"].get(status, 0))
        for severity in SEVERITIES:
            registry.open_signals.labels(severity=severity).set(
                counts["open_by_severity"].get(severity, 0))
        if backlog is not None:
            registry.forward_backlog.set(backlog)
        registry.db_size.set(await store.size_bytes())
    registry.log_records_dropped.set(logs.dropped_records())
    return web.Response(body=registry.render(), headers={"Content-Type": metrics.CONTENT_TYPE})


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def swagger_ui(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static.STATIC_DIR / "docs" / "swagger.html")


async def redoc(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static.STATIC_DIR / "docs" / "redoc.html")
