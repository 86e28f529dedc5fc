"""The console: its page, and signing in and out with a person's key or the admin key."""

from __future__ import annotations

from aiohttp import web

from .. import static
from ..auth.authenticate import failed_authentication
from ..auth.keys import Access, SharedKeyRefused
from ..auth.sessions import (
    COOKIE_NAME,
    check_csrf,
    clear_session_cookie,
    session_from_cookie,
    set_session_cookie,
)
from ..models import SessionLogin
from ..responses import ApiError, json_response
from ..state import BODY, KEYRING, SESSIONS


async def console_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static.STATIC_DIR / "index.html",
                            headers={"Cache-Control": "no-cache"})


async def create_session(request: web.Request) -> web.Response:
    """Exchange a key that may read for a session cookie; agent keys cannot sign in."""
    login = SessionLogin.model_validate_json(request[BODY])
    try:
        caller = request.app[KEYRING].identify(login.key)
    except SharedKeyRefused:
        caller = None
    if caller is None:  # a guess: limited like any failed authentication
        raise failed_authentication(request, presented=True, message="invalid analyst key")
    if not caller.may(Access.READ):
        raise ApiError(401, "invalid analyst key")
    sessions = request.app[SESSIONS]
    await sessions.revoke(request.cookies.get(COOKIE_NAME))
    token, session = await sessions.create(caller.actor, caller.role, caller.key_id)
    response = json_response({"csrf_token": session.csrf_token,
                              "expires_in": int(sessions.ttl_seconds),
                              "actor": session.actor, "role": session.role},
                             headers={"Cache-Control": "no-store"})
    set_session_cookie(request, response, token, sessions.ttl_seconds)
    return response


async def get_session(request: web.Request) -> web.Response:
    session = await session_from_cookie(request, request.app[SESSIONS])
    if session is None:
        raise ApiError(401, "not signed in")
    return json_response({"csrf_token": session.csrf_token, "actor": session.actor,
                          "role": session.role}, headers={"Cache-Control": "no-store"})


async def delete_session(request: web.Request) -> web.Response:
    sessions = request.app[SESSIONS]
    session = await session_from_cookie(request, sessions)
    if session is not None:
        check_csrf(request, session)  # another site must not be able to sign the analyst out
        await sessions.revoke(request.cookies.get(COOKIE_NAME))
    response = json_response({"status": "signed out"})
    clear_session_cookie(request, response)
    return response
