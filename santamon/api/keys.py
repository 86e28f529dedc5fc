"""Every piece of application state, typed, in one place."""

from aiohttp import web

from ..config import Settings
from ..metrics import Metrics
from ..ratelimit import FailedAuthLimiter
from ..store import Store
from .auth import KeyRing, Role

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", bytes)  # the serialised document, built once

# Per request: the caller's role, set by the auth middleware.
PRINCIPAL = web.RequestKey("principal", Role)
# Per request: the agent a signal or heartbeat came from, for the request log.
AGENT_ID = web.RequestKey("agent_id", str)
