"""The web application's state, as typed keys: filled once by the composition root
(santamon/app.py), read by middlewares and handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..config import Settings
from ..jobs.scheduler import Jobs
from ..metrics import Metrics
from ..store import Liveness, Store
from .auth.keys import Caller, KeyRing, Role
from .auth.limiter import FailedAuthLimiter
from .auth.sessions import ConsoleSessions


@dataclass
class HealthCache:
    last_ok: float = float("-inf")  # time.monotonic() of the last proven write


SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Callable[[], int])  # nanoseconds since the epoch; tests move it
STORE = web.AppKey("store", Store)
LIVENESS = web.AppKey("liveness", Liveness)  # heartbeats on their way to the store
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)  # for forwarding
JOBS = web.AppKey("jobs", Jobs)
KEYRING = web.AppKey("keyring", KeyRing)
SESSIONS = web.AppKey("sessions", ConsoleSessions)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", bytes)  # the serialised document, built once
HEALTH = web.AppKey("health", HealthCache)
# The role each route needs (routes.py), by the route object aiohttp matched.
ROUTE_ROLES = web.AppKey("route_roles", dict[web.AbstractRoute, Role])

# Per request: who is calling, set by the auth middleware.
CALLER = web.RequestKey("caller", Caller)
# Per request: the agent a signal or heartbeat came from, for the request log.
AGENT_ID = web.RequestKey("agent_id", str)
