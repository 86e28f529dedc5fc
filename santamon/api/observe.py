"""What every request leaves behind: one log line and its metrics."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from ..logs import log_request
from .keys import AGENT_ID, METRICS

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED = 499  # nginx's code for a client that went away before the answer


def route_label(request: web.Request) -> str:
    """The route template (`/signals/{signal_id}`), so metric labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees the final status after errors became JSON responses."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects; errors were turned into responses inside
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        elapsed = time.perf_counter() - start
        route = route_label(request)
        method = request.method if request.method in _METHODS else "other"
        metrics = request.app[METRICS]
        metrics.latency.labels(route=route, method=method).observe(elapsed)
        metrics.requests.labels(route=route, method=method, status=str(status)).inc()
        if route == "/ingest" and status >= 400:
            metrics.count_ingest_rejected(status)
        log_request(request.method, request.path, status, elapsed,
                    agent_id=request.get(AGENT_ID), remote=request.remote)
