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
from ..store import Store
from .auth.keys import Caller, KeyRing, Role
from .auth.limiter import BodyBudget, FailedAuthLimiter, WarningLimiter
from .auth.sessions import ConsoleSessions


@dataclass
class HealthCache:
    last_ok: float = float("-inf")  # time.monotonic() of the last proven write


SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Callable[[], int])  # nanoseconds since the epoch; tests move it
STORE = web.AppKey("store", Store)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)  # for forwarding
JOBS = web.AppKey("jobs", Jobs)
KEYRING = web.AppKey("keyring", KeyRing)
SESSIONS = web.AppKey("sessions", ConsoleSessions)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", bytes)  # the serialised document, built once
HEALTH = web.AppKey("health", HealthCache)
# Agent connection problems, counted and written in batches (api/problems.py records them).
PROBLEMS = web.AppKey("problems", ConnectionProblems)
# Warnings about requests refused for their agent key: once per client address and period.
KEY_WARNINGS = web.AppKey("key_warnings", WarningLimiter)
# The role each route needs (routes.py), by the route object aiohttp matched.
ROUTE_ROLES = web.AppKey("route_roles", dict[web.AbstractRoute, Role])
# The largest body each route reads (routes.py); a route not in it reads none.
ROUTE_BODY_LIMITS = web.AppKey("route_body_limits", dict[web.AbstractRoute, int])
# Bytes held by bodies being read before authentication (the sign-in), all requests together.
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)

# Per request: who is calling, set by the auth middleware.
CALLER = web.RequestKey("caller", Caller)
# Per request: the agent a signal or heartbeat came from, for the request log.
AGENT_ID = web.RequestKey("agent_id", str)
# Per request: the body of a route that takes one, read by body_middleware (b"" if none).
BODY = web.RequestKey("body", bytes)
