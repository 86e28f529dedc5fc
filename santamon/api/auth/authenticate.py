"""Who may make this request: a key, or a console session with its CSRF token."""

from __future__ import annotations

from aiohttp import web

from ..responses import ApiError
from ..state import AUTH_LIMITER, KEY_SYNC, KEYRING, METRICS, SESSIONS
from .keys import PUBLIC_CALLER, Access, Caller, SharedKeyRefused, presented_key
from .sessions import Session, check_csrf, csrf_ok, session_from_cookie

SHARED_KEY_REFUSED = ("shared agent keys are turned off here (SANTAMON_AGENT_KEYS=bound-only): "
                      "give this Mac a key of its own (santamon agent-keys create)")


def session_caller(session: Session) -> Caller:
    return Caller(session.role, session.actor, key_id=session.key_id)


async def authenticate(request: web.Request, needed: Access) -> Caller:
    """The caller, or an ApiError: 401 (no or a wrong key), 403 (a key that may not do this),
    429 (too many failures from this address)."""
    if needed is Access.PUBLIC:
        return PUBLIC_CALLER
    key = presented_key(request)
    caller = None
    if key:
        try:
            caller = request.app[KEYRING].identify(key)
        except SharedKeyRefused:
            raise failed_authentication(request, presented=True,
                                        message=SHARED_KEY_REFUSED) from None
    elif (session := await session_from_cookie(request, request.app[SESSIONS])) is not None:
        check_csrf(request, session)
        caller = session_caller(session)
    if caller is None:
        raise failed_authentication(request, presented=bool(key))
    if not caller.may(needed):
        raise ApiError(403, f"a key of role {caller.role!r} may not use this endpoint",
                       role=caller.role)
    if caller.host is not None:
        request.app[KEY_SYNC].used(caller, request.remote)
    return caller


async def may_call(request: web.Request, needed: Access) -> bool:
    """Whether the request's key or console session (with its CSRF token) is enough for
    `needed`. Counts and raises nothing: authenticate() gives the answer."""
    if needed is Access.PUBLIC:
        return True
    key = presented_key(request)
    caller = None
    if key:
        try:
            caller = request.app[KEYRING].identify(key)
        except SharedKeyRefused:
            return False
    else:
        session = await session_from_cookie(request, request.app[SESSIONS])
        if session is not None and csrf_ok(request, session):
            caller = session_caller(session)
    return caller is not None and caller.may(needed)


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
