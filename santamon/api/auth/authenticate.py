"""Who may make this request: a key, or a console session with its CSRF token."""

from __future__ import annotations

from aiohttp import web

from ..responses import ApiError
from ..state import AUTH_LIMITER, KEYRING, METRICS, SESSIONS
from .keys import ANALYST_ACTOR, Caller, Role, presented_key
from .sessions import check_csrf, session_from_cookie


async def authenticate(request: web.Request, needed: Role) -> Caller:
    """The caller, or an ApiError: 401 (no or a wrong key), 403 (a role too low), 429."""
    if needed is Role.PUBLIC:
        return Caller(Role.PUBLIC, "anonymous")
    key = presented_key(request)
    caller = None
    if key:
        role = request.app[KEYRING].role_for(key)
        if role is not None:
            caller = Caller(role, ANALYST_ACTOR if role is Role.ANALYST else "agent")
    elif (session := await session_from_cookie(request, request.app[SESSIONS])) is not None:
        check_csrf(request, session)
        caller = Caller(Role.ANALYST, session.actor)  # only the analyst key can sign in
    if caller is None:
        raise failed_authentication(request, presented=bool(key))
    if caller.role < needed:
        raise ApiError(403, "this key may not use this endpoint")
    return caller


def failed_authentication(request: web.Request, *, presented: bool,
                          message: str = "missing or invalid API key") -> ApiError:
    """Count a failed authentication and choose its answer: 401, or 429 once this address has
    failed too often. Only failures are limited: a valid key always passes, even from a
    throttled address, so agents sharing a NAT with a broken client keep working."""
    wait = request.app[AUTH_LIMITER].failure(request.remote)
    reason = "rate_limited" if wait else "invalid" if presented else "missing"
    request.app[METRICS].auth_failures.labels(reason=reason).inc()
    if wait:
        return ApiError(429, "too many failed authentications from this address",
                        headers={"Retry-After": str(wait)}, retry_after=wait)
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="santamon"'})
