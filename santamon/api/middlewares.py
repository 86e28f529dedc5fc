"""Every request's path through the service, in one order (request_middleware): seen as its
client sent it (behind trusted proxies), observed (log line and metrics), errors turned into
JSON, the caller authenticated, the body read (only where a route takes one, bounded, within a
deadline), a missing static file made a JSON 404; the answer to `Expect: 100-continue`; and
the headers every response carries, even those aiohttp makes itself for requests it cannot
parse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestHandler
from pydantic import ValidationError

from ..logs import log_request
from ..store import InvalidCursor, StoreUnavailable
from .auth.authenticate import authenticate, may_call
from .auth.keys import Access
from .problems import wrong_agent_key
from .proxies import forwarded
from .responses import ApiError, error_response
from .state import (
    AGENT_ID,
    BODY,
    BODY_BUDGET,
    CALLER,
    METRICS,
    ROUTE_ACCESS,
    ROUTE_BODY_LIMITS,
    SETTINGS,
)

log = logging.getLogger(__name__)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED = 499  # nginx's code for a client that went away before the answer
_FORWARDED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
# A full batch is at most 8 MiB; a client slower than this is holding a connection open, not
# sending a signal.
BODY_READ_TIMEOUT_SECONDS = 30.0


def route_label(request: web.Request) -> str:
    """The route template (`/signals/{signal_id}`), so metric labels stay few."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's path, in this order: seen as its client sent it (behind trusted
    proxies); observed with its final status (log line and metrics); errors turned into JSON;
    the caller authenticated; the body read; a missing static file made a JSON 404. One
    middleware rather than one per step, because each layer costs a coroutine per request.

    A request through a trusted proxy (SANTAMON_TRUSTED_PROXIES) carries the client's address
    and scheme from the start, so whatever names the client is the client's, not the proxy's:
    the request log, the failed-authentication limit, wrong-key warnings, the agent connection
    problems, an agent key's last address, a misuse alert, and the session cookie's Secure
    flag."""
    trusted = request.app[SETTINGS].trusted_proxies
    if trusted and (client := forwarded(request, trusted)) is not None:
        remote, secure = client
        request = request.clone(remote=remote, scheme="https" if secure else request.scheme)
    start = time.perf_counter()
    status = 500
    try:
        try:
            response = await _authenticated(request, handler)
        except Exception as exc:
            response = error_answer(request, exc)
            if response is None:
                raise
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects; errors were turned into responses above
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        elapsed = time.perf_counter() - start
        route = route_label(request)
        request.app[METRICS].observe_request(
            route, request.method if request.method in _METHODS else "other", status, elapsed)
        log_request(request.method, request.path, status, elapsed,
                    agent_id=request.get(AGENT_ID), remote=request.remote)


async def _authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer once the caller is known and the body read (only where a route
    takes one: a protected route never reads a body without a valid key)."""
    needed = required_access(request)
    try:
        request[CALLER] = await authenticate(request, needed)
    except ApiError as exc:
        if needed is Access.AGENT and exc.status in (401, 429):  # an agent with a bad key
            await wrong_agent_key(request, throttled=exc.status == 429)
        raise
    if limit := body_limit(request):
        request[BODY] = await _read_body(request, limit) if request.body_exists else b""
    response = await handler(request)
    # aiohttp finds out that a static file is missing only while sending it, and then sends
    # an empty 404 that no middleware sees: check first, so the answer is a JSON 404.
    resource = request.match_info.route.resource
    if isinstance(resource, web.StaticResource) and isinstance(response, web.FileResponse):
        path = resource.get_info()["directory"] / request.match_info["filename"]
        if not await asyncio.to_thread(path.is_file):
            raise ApiError(404, "no such file")
    return response


def error_answer(request: web.Request, exc: Exception) -> web.Response | None:
    """Every failure as a JSON error with the right status, never a traceback; None for a
    redirect, which goes on as it is."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)
    if isinstance(exc, ValidationError):
        return validation_error_response(exc)
    if isinstance(exc, InvalidCursor):
        return error_response(422, "validation failed", details=[
            {"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}])
    if isinstance(exc, StoreUnavailable):
        log.warning("store unavailable for %s %s: %s", request.method, request.path, exc)
        return error_response(503, "storage unavailable, retry later",
                              headers={"Retry-After": "5"})
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            return None
        headers = {name: exc.headers[name] for name in _FORWARDED_HEADERS if name in exc.headers}
        return error_response(exc.status, exc.reason.lower(), headers=headers)
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal error")


def validation_error_response(exc: ValidationError) -> web.Response:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return error_response(400, "malformed JSON body",
                              details=[error["msg"] for error in errors])
    details = [{"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
               for error in errors]
    return error_response(422, "validation failed", details=details)


def required_access(request: web.Request) -> Access:
    """The access routes.py declares for the matched route. The console's own files are
    public; anything unmatched (404, 405) needs a key that may read, like the API around it."""
    route = request.match_info.route
    if isinstance(route.resource, web.StaticResource):
        return Access.PUBLIC
    return request.app[ROUTE_ACCESS].get(route, Access.READ)


def body_limit(request: web.Request) -> int:
    """The largest body the matched route reads (routes.py); 0: it reads none."""
    return request.app[ROUTE_BODY_LIMITS].get(request.match_info.route, 0)


async def _read_body(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    held = (_unauthenticated(request, limit if declared is None else declared)
            if required_access(request) is Access.PUBLIC else contextlib.nullcontext())
    body = bytearray()
    with held:
        try:
            if request.content.is_eof():  # all of it came with the headers: nothing to wait for
                body += request.content.read_nowait()
                if len(body) > limit:
                    raise _too_large(limit)
            else:
                async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
                    while chunk := await request.content.readany():
                        body += chunk
                        if len(body) > limit:
                            raise _too_large(limit)
        except TimeoutError:
            raise ApiError(408, "request body not received in time") from None
        except web.RequestPayloadError:
            raise ApiError(400, "request body cannot be read: bad chunked framing or "
                                "Content-Encoding") from None
        except ConnectionResetError:
            raise ApiError(CLIENT_CLOSED, "the client closed the connection") from None
    return bytes(body)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body over {limit} bytes", limit=limit)


@contextlib.contextmanager
def _unauthenticated(request: web.Request, size: int) -> Iterator[None]:
    """A body read before any key is checked (the sign-in's) holds part of one budget."""
    budget = request.app[BODY_BUDGET]
    if not budget.reserve(size):
        raise ApiError(503, "too many unauthenticated requests in progress, retry later",
                       headers={"Retry-After": "1"})
    try:
        yield
    finally:
        budget.release(size)


MIDDLEWARES: list[Middleware] = [request_middleware]


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Answer `Expect: 100-continue` only when the body will be read: the route takes one, it
    fits, and the caller may use the route. Otherwise nothing is sent and the request goes
    on to the middlewares, which answer 401, 403 or 413 without reading the body."""
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        return error_response(417, "only Expect: 100-continue is understood")
    limit, declared = body_limit(request), request.content_length
    if (request.version == HttpVersion11 and limit
            and (declared is None or declared <= limit)
            and await may_call(request, required_access(request))):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer itself has not started (as aiohttp does)
    return None


# -- headers on every response ----------------------------------------------------------------

# The console and the API: nothing but this origin, no inline code or styles.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# Swagger UI and ReDoc set inline styles from their scripts and ReDoc searches in a worker.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# An API answer (JSON) is no document: it runs nothing, loads nothing and is never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOC_PAGES = frozenset({"/docs", "/redoc"})
HSTS = "max-age=31536000"
SERVER = "santamon"  # never a version: it only helps whoever looks for a known flaw
# Every answer: no MIME sniffing, no framing, no referrer, not readable by another origin.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Documents only (pages, scripts, styles): a browsing context and its features. A browser
# applies neither to JSON, and every header is bytes and CPU on each of a fleet's heartbeats.
DOCUMENT_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook, so it covers every response, files and errors included."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if response.content_type == "application/json":
        headers.setdefault("Content-Security-Policy", API_CSP)
    else:
        for name, value in DOCUMENT_HEADERS.items():
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
    headers["Server"] = SERVER


def answer_protocol_errors_in_json() -> None:
    """aiohttp answers a request it cannot parse (a bad header line, a request line that is not
    HTTP) itself, before any application or hook sees it: in plain text that echoes the
    offending bytes, without our headers, with its version in `Server`. It offers no hook for
    that answer, so its handler is wrapped, once per process."""
    original = RequestHandler.handle_error
    if getattr(original, "santamon", False):
        return

    def handle_error(self: RequestHandler, request: Any, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # The original logs (logs.py keeps header values out) and refuses to answer once an
        # answer has begun; its plain-text answer is replaced.
        original(self, request, status, exc, message)
        response = error_response(status, HTTPStatus(status).phrase.lower(), headers={
            **SECURITY_HEADERS, "Content-Security-Policy": API_CSP,
            "Cache-Control": "no-store", "Server": SERVER})
        response.force_close()
        return response

    handle_error.santamon = True  # type: ignore[attr-defined]
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]
