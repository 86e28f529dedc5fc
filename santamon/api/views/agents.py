"""Agents: their latest heartbeat, and the problems they have reaching this service."""

from __future__ import annotations

from aiohttp import web

from ... import timeutil
from ...domain.problems import hour_of
from ...store import AgentFilter
from ..models import AgentQuery, ProblemsQuery
from ..responses import json_response
from ..state import CLOCK, PROBLEMS, STORE


async def list_agents(request: web.Request) -> web.Response:
    query = AgentQuery.model_validate(dict(request.query))
    agents = await request.app[STORE].list_agents(AgentFilter(
        status=None if query.status == "all" else query.status, since=query.since,
        limit=query.limit))
    return json_response({"count": len(agents), "heartbeats": agents})


async def connection_problems(request: web.Request) -> web.Response:
    """Failed TLS handshakes, wrong keys, key misuse and shortened contexts per client address,
    counted per hour, over the last `hours` hours (the current one included)."""
    query = ProblemsQuery.model_validate(dict(request.query))
    await request.app[PROBLEMS].flush()  # what this process counted so far, too
    since = hour_of(request.app[CLOCK]() - (query.hours - 1) * timeutil.HOUR_NS)
    problems = await request.app[STORE].connection_problems(since, query.limit)
    return json_response({"since": since, "count": len(problems), "problems": problems})
