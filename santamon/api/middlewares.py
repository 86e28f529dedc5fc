"""Request pipeline: JSON errors for everything, then authentication."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from ..store import StoreUnavailable
from .auth import Role, presented_key, required_role
from .keys import AUTH_LIMITER, KEYRING, METRICS, PRINCIPAL, SESSIONS
from .responses import ApiError, error_response
from .session import check_csrf, csrf_ok, session_from_cookie

log = logging.getLogger(__name__)

_FORWARDED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error with the right status; never a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)
    except ValidationError as exc:
        return validation_error_response(exc)
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


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    needed = required_role(request)
    if needed is Role.PUBLIC:
        return await handler(request)
    key = presented_key(request)
    if key:
        role = request.app[KEYRING].role_for(key)
    elif (session := session_from_cookie(request, request.app[SESSIONS])) is not None:
        check_csrf(request, session)
        role = Role.ANALYST  # only the analyst key can open a console session
    else:
        role = None
    if role is None:
        raise failed_authentication(request, presented=bool(key))
    if role < needed:
        raise ApiError(403, "this key may not use this endpoint")
    request[PRINCIPAL] = role
    return await handler(request)


def may_call(request: web.Request) -> bool:
    """Whether the request's key or console session (with its CSRF token) may use its route.
    Counts and raises nothing: auth_middleware gives the answer."""
    needed = required_role(request)
    if needed is Role.PUBLIC:
        return True
    key = presented_key(request)
    if key:
        role = request.app[KEYRING].role_for(key)
    else:
        session = session_from_cookie(request, request.app[SESSIONS])
        role = Role.ANALYST if session is not None and csrf_ok(request, session) else None
    return role is not None and role >= needed


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
