"""Agents: their latest heartbeat, each one's timeline, and the problems they have reaching
this service."""

from __future__ import annotations

from aiohttp import web

from ... import timeutil
from ...domain import heartbeats
from ...domain.problems import hour_of
from ...store import AgentFilter, KeptBeat
from ..models import AgentQuery, AgentTimelineQuery, ProblemsQuery, TimelineQuery
from ..responses import ApiError, json_response
from ..state import CLOCK, LIVENESS, PROBLEMS, SETTINGS, SILENCES, STORE

NS = 1_000_000_000


async def list_agents(request: web.Request) -> web.Response:
    query = AgentQuery.model_validate(dict(request.query))
    await request.app[LIVENESS].flush()  # every heartbeat acknowledged so far counts
    agents = await request.app[STORE].list_agents(AgentFilter(
        status=None if query.status == "all" else query.status, since=query.since,
        limit=query.limit))
    silences = request.app[SILENCES]
    for agent in agents:
        agent["maintenance_until"] = silences.maintenance_until(agent["agent_id"])
    return json_response({"count": len(agents), "heartbeats": agents})


async def agent_timeline(request: web.Request) -> web.Response:
    """Online and offline intervals, availability per day, versions and reboots."""
    return await _timeline(request, request.match_info["agent_id"],
                           TimelineQuery.model_validate(dict(request.query)))


async def agent_timeline_by_query(request: web.Request) -> web.Response:
    """A path cannot carry every agent id (`/`, `.`, `..`, or `problems`, which is another
    route), so the console names the agent in the query instead."""
    query = AgentTimelineQuery.model_validate(dict(request.query))
    return await _timeline(request, query.agent_id, query)


async def _timeline(request: web.Request, agent_id: str, query: TimelineQuery) -> web.Response:
    now_ns = request.app[CLOCK]()
    until_ns = timeutil.parse_ns(query.until) if query.until else now_ns
    since_ns = (timeutil.parse_ns(query.since) if query.since
                else until_ns - int(request.app[SETTINGS].heartbeat_retention * NS))
    if since_ns >= until_ns:
        raise ApiError(422, "validation failed",
                       details=[{"loc": ["since"], "msg": "since must be before until",
                                 "type": "value_error"}])
    await request.app[LIVENESS].flush()
    since, until = timeutil.format_utc(since_ns), timeutil.format_utc(until_ns)
    history = await request.app[STORE].agent_history(agent_id, since, until)
    if history is None:
        raise ApiError(404, "no agent has this id", agent_id=agent_id)
    agent = {**history.agent,
             "maintenance_until": request.app[SILENCES].maintenance_until(agent_id)}
    latest = KeptBeat(agent["last_seen"], agent["timestamp"], agent["version"],
                      agent["os_version"], agent["uptime_seconds"], reasons=())
    return json_response({
        "agent": agent, "since": since, "until": until,
        **heartbeats.timeline(history.beats, latest, stale=agent["status"] == "stale",
                              since_ns=since_ns, until_ns=until_ns, now_ns=now_ns)})


async def connection_problems(request: web.Request) -> web.Response:
    """Failed TLS handshakes, wrong keys, key misuse and shortened contexts per client address,
    counted per hour, over the last `hours` hours (the current one included)."""
    query = ProblemsQuery.model_validate(dict(request.query))
    await request.app[PROBLEMS].flush()  # what this process counted so far, too
    since = hour_of(request.app[CLOCK]() - (query.hours - 1) * timeutil.HOUR_NS)
    problems = await request.app[STORE].connection_problems(since, query.limit)
    return json_response({"since": since, "count": len(problems), "problems": problems})
