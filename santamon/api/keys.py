"""Every piece of application state, typed, in one place."""

import aiohttp
from aiohttp import web

from ..config import Settings
from ..jobs.board import JobBoard
from ..metrics import Metrics
from ..ratelimit import BodyBudget, FailedAuthLimiter
from ..store import Store
from .auth import KeyRing, Role
from .session import SessionStore

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
AUTH_LIMITER = web.AppKey("auth_limiter", FailedAuthLimiter)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", bytes)  # the serialised document, built once
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)  # for forwarding
JOB_BOARD = web.AppKey("job_board", JobBoard)
SESSIONS = web.AppKey("sessions", SessionStore)
# Bytes held by bodies being read before authentication (the sign-in), all requests together.
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)

# Per request: the caller's role, set by the auth middleware.
PRINCIPAL = web.RequestKey("principal", Role)
# Per request: the agent a signal or heartbeat came from, for the request log.
AGENT_ID = web.RequestKey("agent_id", str)
# Per request: the body, read by body_middleware for the routes that take one.
BODY = web.RequestKey("body", bytes)
