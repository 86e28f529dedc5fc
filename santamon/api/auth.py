"""Who is calling: agent keys, the analyst key, and which role each route needs."""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

Handler = TypeVar("Handler", bound=Callable[..., Any])


class Role(enum.IntEnum):
    PUBLIC = 0
    AGENT = 1  # may only ship signals and heartbeats
    ANALYST = 2  # may do everything


ROLE_ATTRIBUTE = "santamon_role"
ANALYST_ACTOR = "analyst"  # who the history says triaged, for the analyst key


def requires(role: Role) -> Callable[[Handler], Handler]:
    """Mark the role a handler needs; handlers without a mark need the analyst key."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, ROLE_ATTRIBUTE, role)
        return handler

    return mark


def required_role(request: web.Request) -> Role:
    if isinstance(request.match_info.route.resource, web.StaticResource):
        return Role.PUBLIC  # the console's own files
    handler = request.match_info.route.handler
    return getattr(handler, ROLE_ATTRIBUTE, Role.ANALYST)


def _digest(key: str) -> bytes:
    # Hashing first makes every comparison the same length, whatever was presented.
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyRing:
    def __init__(self, agent_keys: Iterable[str], analyst_key: str) -> None:
        self._agent = [_digest(key) for key in agent_keys]
        self._analyst = _digest(analyst_key)

    def role_for(self, presented: str) -> Role | None:
        digest = _digest(presented)
        if hmac.compare_digest(digest, self._analyst):
            return Role.ANALYST
        matched = False
        for key in self._agent:  # no early exit: every key is compared every time
            matched |= hmac.compare_digest(digest, key)
        return Role.AGENT if matched else None


def presented_key(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("X-API-Key") or None
