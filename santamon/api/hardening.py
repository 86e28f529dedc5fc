"""Defences every request passes: security headers, and a deadline for reading the body."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from .responses import ApiError

# A full batch is at most 8 MiB; a client slower than this is holding a connection open, not
# sending a signal. Headers are bounded by aiohttp itself (128 headers of at most 8 KiB each).
BODY_READ_TIMEOUT_SECONDS = 30.0


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
    if request.secure:
        headers["Strict-Transport-Security"] = HSTS
    headers["Server"] = "santamon"
