"""Defences every request passes: bodies read only where a route takes one, bounded, within a
deadline and (but for the console's sign-in) only after the key is checked; `Expect:
100-continue` answered only for a body that will be read; JSON answers with the security
headers everywhere, even for requests aiohttp cannot parse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from .keys import BODY, BODY_BUDGET, PRINCIPAL
from .middlewares import may_call
from .observe import CLIENT_CLOSED
from .responses import ApiError, error_response

# What each route may receive: a full batch for /ingest (a signal alone is at most ~100 KB),
# an analyst's notes and id lists, a key at sign-in. Routes without a limit read no body.
MAX_BODY_BYTES = 8 * 1024 * 1024
SMALL_BODY_BYTES = 64 * 1024  # a heartbeat, one status change
BULK_STATUS_BODY_BYTES = 2 * 1024 * 1024  # 1,000 ids of up to 256 characters, and a note
SESSION_BODY_LIMIT = 8 * 1024  # {"key": "..."}: a key is at most 1,024 characters
# The sign-in reads its body before any key is checked: all such bodies in progress together
# hold at most this much; beyond it a sign-in gets 503 at once.
UNAUTHENTICATED_BODY_BUDGET = 1024 * 1024
# A client slower than this is holding a connection open, not sending a request.
BODY_READ_TIMEOUT_SECONDS = 30.0
# An idle connection, or one whose request headers have not all arrived this long after it
# opened or its last answer, is closed (aiohttp counts both from the same moment).
KEEPALIVE_TIMEOUT_SECONDS = 15.0
# aiohttp's own limits, stated: the request line and each header at most 8 KiB, 128 headers.
HANDLER_ARGS = {"keepalive_timeout": KEEPALIVE_TIMEOUT_SECONDS, "max_line_size": 8190,
                "max_field_size": 8190, "max_headers": 128}

_BODY_LIMIT_ATTRIBUTE = "santamon_body_limit"
H = TypeVar("H", bound=Callable[..., Any])


def takes_body(max_bytes: int) -> Callable[[H], H]:
    """Mark a handler as reading a request body of at most `max_bytes` (see request_body)."""

    def mark(handler: H) -> H:
        setattr(handler, _BODY_LIMIT_ATTRIBUTE, max_bytes)
        return handler

    return mark


def body_limit(request: web.Request) -> int:
    return getattr(request.match_info.route.handler, _BODY_LIMIT_ATTRIBUTE, 0)


def request_body(request: web.Request) -> bytes:
    """The body body_middleware read for this request (empty when there was none)."""
    return request.get(BODY, b"")


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the body of a route that takes one, before its handler. Runs after
    authentication, so a protected route never reads a body without a valid key."""
    limit = body_limit(request)
    if limit and request.body_exists:
        request[BODY] = await _read_body(request, limit)
    return await handler(request)


async def _read_body(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(413, f"request body over {limit} bytes", limit=limit)
    held = (contextlib.nullcontext() if PRINCIPAL in request
            else _unauthenticated(request, limit if declared is None else declared))
    body = bytearray()
    with held:
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
                while chunk := await request.content.readany():
                    body += chunk
                    if len(body) > limit:
                        raise ApiError(413, f"request body over {limit} bytes", limit=limit)
        except TimeoutError:
            raise ApiError(408, "request body not received in time") from None
        except web.RequestPayloadError:
            raise ApiError(400, "request body cannot be read: bad chunked framing or "
                                "Content-Encoding") from None
        except ConnectionResetError:
            raise ApiError(CLIENT_CLOSED, "the client closed the connection") from None
    return bytes(body)


@contextlib.contextmanager
def _unauthenticated(request: web.Request, size: int) -> Iterator[None]:
    budget = request.app[BODY_BUDGET]
    if not budget.reserve(size):
        raise ApiError(503, "too many unauthenticated requests in progress, retry later",
                       headers={"Retry-After": "1"})
    try:
        yield
    finally:
        budget.release(size)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Answer `Expect: 100-continue` only when the body will be read: the route takes one, it
    fits, and the caller may use the route. Otherwise nothing is sent and the request goes
    on to the middlewares, which answer 401, 403 or 413 without reading the body."""
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        return error_response(417, "only Expect: 100-continue is understood")
    limit, declared = body_limit(request), request.content_length
    if (request.version == HttpVersion11 and limit
            and (declared is None or declared <= limit) and may_call(request)):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer itself has not started (as aiohttp does)
    return None


@web.middleware
async def static_files_middleware(request: web.Request,
                                  handler: Handler) -> web.StreamResponse:
    """aiohttp finds out that a static file is missing only while sending it, and then sends an
    empty 404 that no middleware sees: check first, so the answer is a JSON 404."""
    response = await handler(request)
    resource = request.match_info.route.resource
    if isinstance(resource, web.StaticResource) and isinstance(response, web.FileResponse):
        path = resource.get_info()["directory"] / request.match_info["filename"]
        if not await asyncio.to_thread(path.is_file):
            raise ApiError(404, "no such file")
    return response


# The console and the API: nothing but this origin, no inline code or styles.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# Swagger UI and ReDoc set inline styles from their scripts and ReDoc searches in a worker.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
DOC_PAGES = frozenset({"/docs", "/redoc"})
HSTS = "max-age=31536000"
SERVER = "santamon"  # never a version: it only helps whoever looks for a known flaw
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
            **SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP,
            "Cache-Control": "no-store", "Server": SERVER})
        response.force_close()
        return response

    handle_error.santamon = True  # type: ignore[attr-defined]
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]
