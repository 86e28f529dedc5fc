"""Who is calling: what each route needs, what each kind of caller is granted, and the key ring
that recognises a key.

Access is not an order of roles: a viewer reads but changes nothing, an agent changes only
what it ships and reads nothing. So each route names the one access it needs (routes.py) and
each caller carries the set it was granted.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from ... import timeutil
from ...domain.keys import (
    ADMIN,
    ANALYST_ROLE,
    BOUND_AUTH,
    SHARED_AUTH,
    VIEWER_ROLE,
    digest,
    fingerprint,
)
from ...store import AgentKey, AnalystKey


class Access(enum.Enum):
    """What a route needs."""

    PUBLIC = "public"  # anyone
    AGENT = "agent"  # ship signals and heartbeats
    READ = "read"  # signals and their groups, silences, agents, stats, jobs, metrics, agent keys
    WRITE = "write"  # triage, create and expire silences
    KEYS = "keys"  # create, rotate and revoke agent keys


AGENT_ROLE = "agent"
ANONYMOUS = "anonymous"
# What each kind of caller may do. The admin key may do everything, ingest included (it always
# could: a quick `curl` test from the server).
GRANTS: dict[str, frozenset[Access]] = {
    AGENT_ROLE: frozenset({Access.AGENT}),
    VIEWER_ROLE: frozenset({Access.READ}),
    ANALYST_ROLE: frozenset({Access.READ, Access.WRITE, Access.KEYS}),
    ADMIN: frozenset({Access.AGENT, Access.READ, Access.WRITE, Access.KEYS}),
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request, as the auth middleware found out; handlers trust it."""

    role: str  # a key of GRANTS, or ANONYMOUS on a public route
    actor: str  # who the history records as having made a change
    host: str | None = None  # the one host a bound agent key may send for
    key_id: str | None = None  # the stored key it presented (bound agent keys, people's keys)
    key_label: str = ""  # names the key in alerts and logs, never the key itself

    def may(self, access: Access) -> bool:
        return access is Access.PUBLIC or access in GRANTS.get(self.role, ())

    @property
    def agent_auth(self) -> str:
        """How an agent sending through this caller authenticated, as /agents shows it."""
        if self.host is not None:
            return BOUND_AUTH
        return SHARED_AUTH if self.role == AGENT_ROLE else self.role


PUBLIC_CALLER = Caller(ANONYMOUS, ANONYMOUS)


class SharedKeyRefused(Exception):
    """A shared agent key, while SANTAMON_AGENT_KEYS=bound-only turns them away."""


@dataclass(frozen=True, slots=True)
class _Stored:
    key_hash: bytes
    caller: Caller
    expires_ns: int | None  # a rotated key's end of grace


class KeyRing:
    """Every key the service accepts: the configured ones (shared agent keys, the admin key),
    compared one by one in constant time, and the stored ones (agent keys bound to a host,
    people's keys), found by their SHA-256 in a map kept in step with the store (sync.py).

    Looking the presented key's hash up in a map takes the same few steps however many keys
    there are, and what its timing could reveal is at most part of a hash of a key, which
    does not help to find a key. The entry found is compared again in constant time.
    """

    def __init__(self, shared_agent_keys: Iterable[str], admin_key: str, *, bound_only: bool,
                 clock: Callable[[], int]) -> None:
        self._shared = [(digest(key), Caller(AGENT_ROLE, AGENT_ROLE,
                                             key_label=f"shared key {fingerprint(key)}"))
                        for key in shared_agent_keys]
        self._admin = digest(admin_key)
        self._admin_caller = Caller(ADMIN, ADMIN, key_label=ADMIN)
        self._bound_only = bound_only
        self._clock = clock
        self._stored: dict[bytes, _Stored] = {}

    def load(self, agent_keys: Iterable[AgentKey], people: Iterable[AnalystKey]) -> None:
        """Replace the stored keys with these (valid ones, from the store)."""
        stored: dict[bytes, _Stored] = {}
        for key in agent_keys:
            expires = None if key.expires_at is None else timeutil.parse_ns(key.expires_at)
            stored[key.key_hash] = _Stored(key.key_hash, Caller(
                AGENT_ROLE, AGENT_ROLE, host=key.host_id, key_id=key.key_id,
                key_label=f"agent key {key.key_id}"), expires)
        for person in people:
            stored[person.key_hash] = _Stored(person.key_hash, Caller(
                person.role, person.name, key_id=person.key_id,
                key_label=f"key {person.key_id} of {person.name}"), None)
        self._stored = stored

    def identify(self, presented: str) -> Caller | None:
        """The caller this key belongs to, or None. SharedKeyRefused for a shared agent key
        while only bound keys are accepted."""
        presented_digest = digest(presented)
        is_admin = hmac.compare_digest(presented_digest, self._admin)
        shared = None
        for key, caller in self._shared:  # no early exit: every key is compared every time
            if hmac.compare_digest(presented_digest, key):
                shared = caller
        found = self._stored.get(presented_digest)
        if is_admin:
            return self._admin_caller
        if shared is not None:
            if self._bound_only:
                raise SharedKeyRefused
            return shared
        if found is None or not hmac.compare_digest(presented_digest, found.key_hash):
            return None
        if found.expires_ns is not None and self._clock() >= found.expires_ns:
            return None
        return found.caller


def presented_key(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("X-API-Key") or None
