"""Who may make this request: a key, or a console session with its CSRF token."""

from __future__ import annotations

from aiohttp import web

from ..responses import ApiError
from ..state import AUTH_LIMITER, KEY_SYNC, KEYRING, METRICS, SESSIONS
from .keys import PUBLIC_CALLER, Access, Caller, SharedKeyRefused, presented_key
from .sessions import Session, check_csrf, session_from_cookie

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
    try:
        caller = await _identify(request, key)
    except SharedKeyRefused:
        raise failed_authentication(request, presented=True,
                                    message=SHARED_KEY_REFUSED) from None
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
    try:
        caller = await _identify(request, presented_key(request))
    except (SharedKeyRefused, ApiError):
        return False
    return caller is not None and caller.may(needed)


async def _identify(request: web.Request, key: str | None) -> Caller | None:
    """Who the presented key, or else the console session, belongs to; None for neither.
    Raises SharedKeyRefused (a shared key where only bound keys may ingest) and ApiError 403
    (a session's unsafe request without its CSRF token)."""
    if key:
        return request.app[KEYRING].identify(key)
    session = await session_from_cookie(request, request.app[SESSIONS])
    if session is None:
        return None
    check_csrf(request, session)
    return session_caller(session)


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
