"""Browser sessions for the console.

The page exchanges the analyst key once for a random session id in an HttpOnly, SameSite=Strict
cookie, so the key never lives in the page or in browser storage. A cookie is sent by the
browser on its own, so every state-changing call authenticated by the cookie must also carry
the session's CSRF token in a header, which another site cannot read or set.

Sessions live in memory: a restart signs everyone out, which is acceptable for a console and
keeps no session secrets on disk. Only a SHA-256 of each session id is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from .responses import ApiError

COOKIE_NAME = "santamon_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_SECONDS = 12 * 3600  # one shift; absolute, so auto-refresh cannot extend it
MAX_SESSIONS = 1000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Session:
    csrf_token: str
    expires_at: float  # on the store's clock


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()


class SessionStore:
    def __init__(self, ttl_seconds: float = SESSION_TTL_SECONDS, *,
                 max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._max = max_sessions
        self._clock = clock
        self._sessions: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> tuple[str, Session]:
        """A new session: its id (for the cookie only) and its CSRF token."""
        self._purge()
        while len(self._sessions) >= self._max:  # bounded memory: the oldest sign-in goes
            oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        session = Session(csrf_token=secrets.token_urlsafe(32),
                          expires_at=self._clock() + self.ttl_seconds)
        self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[key]
            return None
        return session

    def revoke(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_digest(session_id), None)

    def _purge(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def session_from_cookie(request: web.Request, store: SessionStore) -> Session | None:
    return store.get(request.cookies.get(COOKIE_NAME))


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


def set_session_cookie(request: web.Request, response: web.StreamResponse, session_id: str,
                       ttl_seconds: float) -> None:
    response.set_cookie(COOKIE_NAME, session_id, max_age=int(ttl_seconds), path="/",
                        httponly=True, samesite="Strict", secure=request.secure)


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict",
                        secure=request.secure)
