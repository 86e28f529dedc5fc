"""The console's HTTP side: its page, and signing in and out (headers: hardening.py)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..models import SessionLogin
from .auth import Role, requires
from .hardening import SESSION_BODY_LIMIT, request_body, takes_body
from .keys import KEYRING, SESSIONS
from .middlewares import failed_authentication
from .responses import ApiError, json_response
from .session import (
    COOKIE_NAME,
    check_csrf,
    clear_session_cookie,
    session_from_cookie,
    set_session_cookie,
)

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"

@requires(Role.PUBLIC)
async def console_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html",
                            headers={"Cache-Control": "no-cache"})


@requires(Role.PUBLIC)
@takes_body(SESSION_BODY_LIMIT)
async def create_session(request: web.Request) -> web.Response:
    """Exchange the analyst key for a session cookie; agent keys cannot sign in."""
    login = SessionLogin.model_validate_json(request_body(request))
    role = request.app[KEYRING].role_for(login.key)
    if role is None:  # a guess: limited like any failed authentication
        raise failed_authentication(request, presented=True, message="invalid analyst key")
    if role is not Role.ANALYST:
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
