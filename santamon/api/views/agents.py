"""Agents and their latest heartbeat."""

from __future__ import annotations

from aiohttp import web

from ...store import AgentFilter
from ..models import AgentQuery
from ..responses import json_response
from ..state import LIVENESS, STORE


async def list_agents(request: web.Request) -> web.Response:
    query = AgentQuery.model_validate(dict(request.query))
    await request.app[LIVENESS].flush()  # every heartbeat acknowledged so far counts
    agents = await request.app[STORE].list_agents(AgentFilter(
        status=None if query.status == "all" else query.status, since=query.since,
        limit=query.limit))
    return json_response({"count": len(agents), "heartbeats": agents})
