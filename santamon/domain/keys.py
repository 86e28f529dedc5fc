"""Keys and who holds them: agent keys bound to a host, people's keys and their roles, and the
alerts about keys (a key speaking for another host, a key bringing too many new agents).

Only a SHA-256 of a key is ever stored or compared; the key itself is shown once, when it is
made, and never again.
"""

from __future__ import annotations

import hashlib
import secrets

import orjson

from ..timeutil import HOUR_NS
from .signals import NewSignal

# What a person's key may do (the API maps each to what it grants); the admin key
# (SANTAMON_ADMIN_KEY) is neither, and may do everything.
ANALYST_ROLE = "analyst"  # read, triage, silence, manage agent keys
VIEWER_ROLE = "viewer"  # read only
PERSON_ROLES = (ANALYST_ROLE, VIEWER_ROLE)
ADMIN = "admin"  # the admin key's name and role, in the history and the console
# Names the service writes into the history itself: a person cannot take one.
RESERVED_NAMES = frozenset({ADMIN, "analyst", "system", "agent", "anonymous"})

# How an agent authenticated, as /agents shows it.
BOUND_AUTH = "bound"  # a key of its own, bound to its host
SHARED_AUTH = "shared"  # a key every agent may hold (SANTAMON_API_KEY)

# A key carries a prefix that says what it is (secret scanners and people recognise it), then
# 256 random bits.
AGENT_KEY_PREFIX = "smak_"
PERSON_KEY_PREFIX = "smpk_"

# How long a rotated key may stay valid beside its successor, at most.
MAX_ROTATION_GRACE_SECONDS = 90 * 86400

MISUSE_RULE_ID = "AGENT-KEY-MISUSE"
NEW_AGENTS_RULE_ID = "AGENT-NEW-IDS-THROTTLED"
# The host of alerts about the fleet or the service rather than one Mac.
SERVICE_HOST = "santamon-backend"


def digest(secret: str) -> bytes:
    """Hashing first makes every comparison the same length, whatever was presented, and
    lets stores keep a key without keeping it."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


def fingerprint(secret: str) -> str:
    """Enough to tell keys apart in logs and alerts (and match `check-config`), never the key."""
    return digest(secret).hex()[:8]


def new_agent_key() -> str:
    return AGENT_KEY_PREFIX + secrets.token_urlsafe(32)


def new_person_key() -> str:
    return PERSON_KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A stored key's public name: in lists, the API's paths and the history."""
    return secrets.token_hex(8)


def agent_key_state(*, expires_at: str | None, revoked_at: str | None, now: str) -> str:
    """`active`, `expiring` (rotated: valid until its grace ends), `expired` or `revoked`."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is None:
        return "active"
    return "expiring" if expires_at > now else "expired"


def _alert_id(*parts: str) -> str:
    """The same parts always give the same id, so with first-write-wins an alert is stored
    once however many requests or instances raise it."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def misuse_alert(*, key_id: str, key_host: str, claimed_host: str, client_address: str | None,
                 endpoint: str, now: str, now_ns: int) -> NewSignal:
    """An agent key sent data for another host: its Mac may be taken over, speaking for others
    (hiding a silenced agent behind forged heartbeats, or forging signals). One per key,
    claimed host and hour."""
    hour = str(now_ns // HOUR_NS)
    context = {"kind": "agent_key_misuse", "key_id": key_id, "key_host": key_host,
               "claimed_host": claimed_host, "client_address": client_address,
               "endpoint": endpoint}
    return NewSignal(
        signal_id=_alert_id(MISUSE_RULE_ID, key_id, claimed_host, hour),
        ts=now, host_id=key_host, rule_id=MISUSE_RULE_ID, severity="critical",
        title=f"Agent key of {key_host} used to send as {claimed_host}",
        tags_json=orjson.dumps(["agent-auth", "tampering"]), context_json=orjson.dumps(context),
        rule_description="A key bound to one host was used to send data claiming another "
                         "host. Whoever holds this key may control the Mac it belongs to: "
                         "check that Mac and rotate or revoke its key.")


def new_agents_alert(*, key_label: str, limit: int, refused_host: str,
                     client_address: str | None, now: str, now_ns: int) -> NewSignal:
    """A key brought more new agent ids in an hour than allowed: new ones are turned away (known
    agents keep working). One per key and hour."""
    hour = str(now_ns // HOUR_NS)
    context = {"kind": "agent_new_ids_throttled", "key": key_label, "limit_per_hour": limit,
               "first_refused_agent_id": refused_host, "client_address": client_address}
    return NewSignal(
        signal_id=_alert_id(NEW_AGENTS_RULE_ID, key_label, hour),
        ts=now, host_id=SERVICE_HOST, rule_id=NEW_AGENTS_RULE_ID, severity="high",
        title=f"Key {key_label} brought over {limit} new agent ids within an hour",
        tags_json=orjson.dumps(["agent-auth", "tampering"]), context_json=orjson.dumps(context),
        rule_description="New agent ids from this key are refused for now (503: agents retry "
                         "later); agents already known keep working. A rollout this large is "
                         "possible, a flood of made-up agents from a stolen key too: check "
                         "which it is, and raise SANTAMON_NEW_AGENTS_PER_HOUR if it is "
                         "the rollout.")
