"""Browser sessions for the console.

The page exchanges a person's key (or the admin key) once for a random session token in an HttpOnly,
SameSite=Strict cookie, so the key never lives in the page or in browser storage. A cookie is
sent by the browser on its own, so every state-changing call authenticated by the cookie must
also carry the session's CSRF token in a header, which another site cannot read or set.

Sessions live in the store, so a restart keeps analysts signed in and several instances share
them. Only a SHA-256 of each token is stored; the CSRF token is an HMAC of the token, so it
cannot be derived from what the database holds either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ... import timeutil
from ...domain.keys import ADMIN, digest
from ...store import ConsoleSession, Store
from ..responses import ApiError

COOKIE_NAME = "santamon_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_SECONDS = 12 * 3600  # one shift; absolute, so auto-refresh cannot extend it
MAX_SESSIONS = 1000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Session:
    csrf_token: str
    actor: str  # who signed in
    role: str  # what their key may do (keys.GRANTS)
    key_id: str | None  # the person's key it was opened with; None for the admin key


def _csrf_token(token: str) -> str:
    mac = hmac.new(token.encode("utf-8", "surrogateescape"), b"santamon-csrf", hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


class ConsoleSessions:
    def __init__(self, store: Store, ttl_seconds: float = SESSION_TTL_SECONDS, *,
                 keep: int = MAX_SESSIONS,
                 clock: Callable[[], int] = timeutil.now_ns) -> None:
        self.ttl_seconds = ttl_seconds
        self._store, self._keep, self._clock = store, keep, clock

    async def create(self, actor: str, role: str = ADMIN,
                     key_id: str | None = None) -> tuple[str, Session]:
        """A new session: its token (for the cookie only) and what the page may know."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        await self._store.create_session(ConsoleSession(
            token_hash=digest(token), actor=actor, created_at=timeutil.format_utc(now),
            expires_at=timeutil.format_utc(now + int(self.ttl_seconds * _NS)), role=role,
            key_id=key_id), self._keep)
        return token, Session(_csrf_token(token), actor, role, key_id)

    async def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        stored = await self._store.get_session(digest(token),
                                               timeutil.format_utc(self._clock()))
        if stored is None:
            return None
        return Session(_csrf_token(token), stored.actor, stored.role, stored.key_id)

    async def revoke(self, token: str | None) -> None:
        if token:
            await self._store.delete_session(digest(token))


async def session_from_cookie(request: web.Request,
                              sessions: ConsoleSessions) -> Session | None:
    return await sessions.get(request.cookies.get(COOKIE_NAME))


def csrf_ok(request: web.Request, session: Session) -> bool:
    """Unsafe methods authenticated by the cookie must echo the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return True
    presented = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                               session.csrf_token.encode())


def check_csrf(request: web.Request, session: Session) -> None:
    if not csrf_ok(request, session):
        raise ApiError(403, f"missing or invalid {CSRF_HEADER} header")


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str,
                       ttl_seconds: float) -> None:
    response.set_cookie(COOKIE_NAME, token, max_age=int(ttl_seconds), path="/",
                        httponly=True, samesite="Strict", secure=request.secure)


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)
