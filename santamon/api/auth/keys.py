"""Who is calling: the roles, the agent keys and the analyst key, compared in constant time."""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web


class Role(enum.IntEnum):
    PUBLIC = 0
    AGENT = 1  # may only ship signals and heartbeats
    ANALYST = 2  # may do everything


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request, as the auth middleware found out; handlers trust it."""

    role: Role
    actor: str  # what the history records as having done a change


ANALYST_ACTOR = "analyst"  # the analyst key, in the history


def digest(secret: str) -> bytes:
    """Hashing first makes every comparison the same length, whatever was presented, and
    lets stores keep a secret without keeping it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class KeyRing:
    def __init__(self, agent_keys: Iterable[str], analyst_key: str) -> None:
        self._agent = [digest(key) for key in agent_keys]
        self._analyst = digest(analyst_key)

    def role_for(self, presented: str) -> Role | None:
        presented_digest = digest(presented)
        if hmac.compare_digest(presented_digest, self._analyst):
            return Role.ANALYST
        matched = False
        for key in self._agent:  # no early exit: every key is compared every time
            matched |= hmac.compare_digest(presented_digest, key)
        return Role.AGENT if matched else None


def presented_key(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("X-API-Key") or None
