"""The console's HTTP side: its page, its security headers, and signing in and out."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..models import SessionLogin
from .auth import Role, requires
from .keys import KEYRING, SESSIONS
from .responses import ApiError, json_response
from .session import (
    COOKIE_NAME,
    check_csrf,
    clear_session_cookie,
    session_from_cookie,
    set_session_cookie,
)

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"

# Scripts and styles only from this origin (so no inline script can run even if some text
# slipped into the page as markup), no framing, no other origin to talk to.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@requires(Role.PUBLIC)
async def console_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html",
                            headers={"Cache-Control": "no-cache"})


@requires(Role.PUBLIC)
async def create_session(request: web.Request) -> web.Response:
    """Exchange the analyst key for a session cookie; agent keys cannot sign in."""
    login = SessionLogin.model_validate_json(await request.read())
    if request.app[KEYRING].role_for(login.key) is not Role.ANALYST:
        raise ApiError(401, "invalid analyst key")
    sessions = request.app[SESSIONS]
    sessions.revoke(request.cookies.get(COOKIE_NAME))
    session_id, session = sessions.create()
    response = json_response({"csrf_token": session.csrf_token,
                              "expires_in": int(sessions.ttl_seconds)},
                             headers={"Cache-Control": "no-store"})
    set_session_cookie(request, response, session_id, sessions.ttl_seconds)
    return response


@requires(Role.PUBLIC)
async def get_session(request: web.Request) -> web.Response:
    session = session_from_cookie(request, request.app[SESSIONS])
    if session is None:
        raise ApiError(401, "not signed in")
    return json_response({"csrf_token": session.csrf_token},
                         headers={"Cache-Control": "no-store"})


@requires(Role.PUBLIC)
async def delete_session(request: web.Request) -> web.Response:
    sessions = request.app[SESSIONS]
    session = session_from_cookie(request, sessions)
    if session is not None:
        check_csrf(request, session)  # another site must not be able to sign the analyst out
        sessions.revoke(request.cookies.get(COOKIE_NAME))
    response = json_response({"status": "signed out"})
    clear_session_cookie(request, response)
    return response
