"""The web application's state, as typed keys: filled once by the composition root
(santamon/app.py), read by middlewares and handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..config import Settings
from ..jobs.problems import ConnectionProblems
from ..jobs.scheduler import Jobs
from ..metrics import Metrics
from ..store import Liveness, Store
from .auth.agents import AgentGuard
from .auth.keys import Access, Caller, KeyRing
from .auth.limiter import BodyBudget, FailedAuthLimiter, WarningLimiter
from .auth.sessions import ConsoleSessions
from .auth.sync import KeySync
from .silencing import SilenceCache


@dataclass
class HealthCache:
    last_ok: float = float("-inf")  # time.monotonic() of the last proven write


SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Callable[[], int])  # nanoseconds since the epoch; tests move it
INSTANCE = web.AppKey("instance", str)  # this process's name in GET /jobs
STORE = web.AppKey("store", Store)
LIVENESS = web.AppKey("liveness", Liveness)  # heartbeats on their way to the store
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)  # for forwarding
JOBS = web.AppKey("jobs", Jobs)
KEYRING = web.AppKey("keyring", KeyRing)
KEY_SYNC = web.AppKey("key_sync", KeySync)  # keeps KEYRING in step with the stored keys
AGENT_GUARD = web.AppKey("agent_guard", AgentGuard)  # whom an agent key may speak for
SESSIONS = web.AppKey("sessions", ConsoleSessions)
SILENCES = web.AppKey("silences", SilenceCache)  # the active ones, for ingest and agents
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", bytes)  # the serialised document, built once
HEALTH = web.AppKey("health", HealthCache)
# Agent connection problems, counted and written in batches (api/problems.py records them).
PROBLEMS = web.AppKey("problems", ConnectionProblems)
# Warnings about requests refused for their agent key: once per client address and period.
KEY_WARNINGS = web.AppKey("key_warnings", WarningLimiter)
# The access each route needs (routes.py), by the route object aiohttp matched.
ROUTE_ACCESS = web.AppKey("route_access", dict[web.AbstractRoute, Access])
# The largest body each route reads (routes.py); a route not in it reads none.
ROUTE_BODY_LIMITS = web.AppKey("route_body_limits", dict[web.AbstractRoute, int])
# Bytes held by bodies being read before authentication (the sign-in's, the start of an agent
# request refused for its key), all requests together.
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)

# Per request: who is calling, set by the auth middleware.
CALLER = web.RequestKey("caller", Caller)
# Per request: the agent a signal or heartbeat came from, for the request log.
AGENT_ID = web.RequestKey("agent_id", str)
# Per request: the body of a route that takes one, read by body_middleware (b"" if none).
BODY = web.RequestKey("body", bytes)
