"""Every request's path through the service, in one order (MIDDLEWARES): seen as its client
sent it (behind trusted proxies), observed (log line and metrics), errors turned into JSON, the
caller authenticated, the body read within a deadline; and the security headers every
response carries."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import ValidationError

from ..logs import log_request
from ..store import InvalidCursor, StoreUnavailable
from .auth.authenticate import authenticate
from .auth.keys import Role
from .proxies import forwarded
from .responses import ApiError, error_response
from .state import AGENT_ID, CALLER, METRICS, ROUTE_ROLES, SETTINGS

log = logging.getLogger(__name__)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED = 499  # nginx's code for a client that went away before the answer
_FORWARDED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
# A full batch is at most 8 MiB; a client slower than this is holding a connection open, not
# sending a signal. Headers are bounded by aiohttp itself (128 headers of at most 8 KiB each).
BODY_READ_TIMEOUT_SECONDS = 30.0


def route_label(request: web.Request) -> str:
    """The route template (`/signals/{signal_id}`), so metric labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def forwarded_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: a request through a trusted proxy (SANTAMON_TRUSTED_PROXIES) carries the
    client's address and scheme from here on, so the log, the failed-authentication limit and
    the session cookie's Secure flag are the client's, not the proxy's."""
    trusted = request.app[SETTINGS].trusted_proxies
    if trusted and (client := forwarded(request, trusted)) is not None:
        remote, secure = client
        request = request.clone(remote=remote, scheme="https" if secure else request.scheme)
    return await handler(request)


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside all but forwarded_middleware: sees the final status after errors became JSON
    responses, and the client's address."""
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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error with the right status; never a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)
    except ValidationError as exc:
        return validation_error_response(exc)
    except InvalidCursor as exc:
        return error_response(422, "validation failed", details=[
            {"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}])
    except StoreUnavailable as exc:
        log.warning("store unavailable for %s %s: %s", request.method, request.path, exc)
        return error_response(503, "storage unavailable, retry later",
                              headers={"Retry-After": "5"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: exc.headers[name] for name in _FORWARDED_HEADERS if name in exc.headers}
        return error_response(exc.status, exc.reason.lower(), headers=headers)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal error")


def validation_error_response(exc: ValidationError) -> web.Response:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return error_response(400, "malformed JSON body",
                              details=[error["msg"] for error in errors])
    details = [{"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
               for error in errors]
    return error_response(422, "validation failed", details=details)


def required_role(request: web.Request) -> Role:
    """The role routes.py declares for the matched route. The console's own files are
    public; anything unmatched (404, 405) needs the analyst key, like the API around it."""
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return Role.PUBLIC
    return request.app[ROUTE_ROLES].get(route, Role.ANALYST)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[CALLER] = await authenticate(request, required_role(request))
    return await handler(request)


@web.middleware
async def body_deadline_middleware(request: web.Request,
                                   handler: Handler) -> web.StreamResponse:
    """Read the body before the handler, within a deadline. Runs after authentication, so on a
    protected route a client without a valid key never has its body read at all."""
    if request.body_exists:
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
                await request.read()  # cached: the handler's read() returns the same bytes
        except TimeoutError:
            raise ApiError(408, "request body not received in time") from None
    return await handler(request)


MIDDLEWARES: list[Middleware] = [forwarded_middleware, observe_middleware, error_middleware,
                                 auth_middleware, body_deadline_middleware]


# -- headers on every response ----------------------------------------------------------------

# The console and the API: nothing but this origin, no inline code or styles.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# Swagger UI and ReDoc set inline styles from their scripts and ReDoc searches in a worker.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
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
    # Called with the request as it arrived: through a trusted proxy, ask what it said.
    trusted = request.app[SETTINGS].trusted_proxies
    if request.secure or (trusted and (client := forwarded(request, trusted)) and client[1]):
        headers["Strict-Transport-Security"] = HSTS
    headers["Server"] = "santamon"
