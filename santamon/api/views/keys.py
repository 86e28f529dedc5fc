"""Agent keys bound to a host: list them, create them (each key shown once), rotate and revoke
them. Who did it is recorded with the key; this instance sees the change at once, others
within their polling interval (auth/sync.py)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ... import timeutil
from ...domain.keys import agent_key_state, digest, new_agent_key, new_key_id
from ...store import AgentKey, NewAgentKey
from ..models import AgentKeyQuery, AgentKeyRotate, AgentKeysCreate
from ..responses import ApiError, json_response
from ..state import BODY, CALLER, CLOCK, KEY_SYNC, STORE

log = logging.getLogger(__name__)
NS = 1_000_000_000


def key_out(key: AgentKey, now: str) -> dict[str, Any]:
    return {"key_id": key.key_id, "host_id": key.host_id,
            "state": agent_key_state(expires_at=key.expires_at, revoked_at=key.revoked_at,
                                     now=now),
            "created_at": key.created_at, "created_by": key.created_by,
            "expires_at": key.expires_at, "revoked_at": key.revoked_at,
            "revoked_by": key.revoked_by, "replaces": key.replaces,
            "last_used_at": key.last_used_at, "last_used_from": key.last_used_from}


def _now(request: web.Request) -> str:
    return timeutil.format_utc(request.app[CLOCK]())


def _new_key(host_id: str, actor: str) -> tuple[str, NewAgentKey]:
    secret = new_agent_key()
    return secret, NewAgentKey(key_id=new_key_id(), key_hash=digest(secret), host_id=host_id,
                               created_by=actor)


async def list_agent_keys(request: web.Request) -> web.Response:
    query = AgentKeyQuery.model_validate(dict(request.query))
    keys = await request.app[STORE].list_agent_keys(query.host_id, query.limit)
    now = _now(request)
    return json_response({"count": len(keys), "keys": [key_out(key, now) for key in keys]})


async def create_agent_keys(request: web.Request) -> web.Response:
    create = AgentKeysCreate.model_validate_json(request[BODY])
    actor = request[CALLER].actor
    issued = [_new_key(host, actor) for host in dict.fromkeys(create.host_ids)]
    stored = await request.app[STORE].create_agent_keys([new for _, new in issued])
    await request.app[KEY_SYNC].refresh()
    now = _now(request)
    for key in stored:
        log.info("agent key %s for host %s created by %s", key.key_id, key.host_id, actor)
    return json_response({"keys": [{**key_out(key, now), "key": secret}
                                   for (secret, _), key in zip(issued, stored, strict=True)]})


async def rotate_agent_key(request: web.Request) -> web.Response:
    key_id = request.match_info["key_id"]
    rotate = AgentKeyRotate.model_validate_json(request[BODY] or b"{}")
    actor = request[CALLER].actor
    now_ns = request.app[CLOCK]()
    secret, new = _new_key("", actor)
    until = timeutil.format_utc(now_ns + int(rotate.grace * NS))
    rotated = await request.app[STORE].rotate_agent_key(key_id, new, until)
    if rotated is None:
        raise ApiError(404, "no valid agent key has this id (unknown, revoked or expired)",
                       key_id=key_id)
    await request.app[KEY_SYNC].refresh()
    # The old key's grace is never stretched: it may end before the one asked for.
    old = next(key for key in await request.app[STORE].list_agent_keys(rotated.host_id)
               if key.key_id == key_id)
    log.info("agent key %s for host %s rotated into %s by %s (the old one valid until %s)",
             key_id, rotated.host_id, rotated.key_id, actor, old.expires_at)
    return json_response({**key_out(rotated, timeutil.format_utc(now_ns)), "key": secret,
                          "replaced_valid_until": old.expires_at})


async def revoke_agent_key(request: web.Request) -> web.Response:
    key_id = request.match_info["key_id"]
    actor = request[CALLER].actor
    revoked = await request.app[STORE].revoke_agent_key(key_id, actor)
    if revoked is None:
        raise ApiError(404, "no agent key has this id", key_id=key_id)
    await request.app[KEY_SYNC].refresh()
    log.info("agent key %s for host %s revoked by %s", key_id, revoked.host_id, actor)
    return json_response(key_out(revoked, _now(request)))
