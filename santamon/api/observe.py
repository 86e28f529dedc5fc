"""What every request leaves behind: one log line, metrics, and the security headers."""

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


# The console and the API: nothing but this origin, no inline code or styles.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            "form-action 'self'")
# Swagger UI and ReDoc set inline styles from their scripts and ReDoc searches in a worker.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            "form-action 'self'")
DOC_PAGES = frozenset({"/docs", "/redoc"})
HSTS = "max-age=31536000"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook, so it covers every response, files and errors included."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    headers.setdefault("Content-Security-Policy",
                       DOCS_CSP if request.path in DOC_PAGES else PAGE_CSP)
    # API answers are live data and may be secret: never stored by a browser or proxy.
    # Static files may be cached but are revalidated (their paths carry no version).
    headers.setdefault("Cache-Control",
                       "no-cache" if request.path.startswith("/static/") else "no-store")
    if request.secure:
        headers["Strict-Transport-Security"] = HSTS
    headers["Server"] = "santamon"
