"""Every piece of application state, typed, in one place."""

import aiohttp
from aiohttp import web

from ..config import Settings
from ..jobs.board import JobBoard
from ..store import Store
from .auth import KeyRing, Role
from .session import SessionStore

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)  # for forwarding
JOB_BOARD = web.AppKey("job_board", JobBoard)
SESSIONS = web.AppKey("sessions", SessionStore)

# Per request: the caller's role, set by the auth middleware.
PRINCIPAL = web.RequestKey("principal", Role)
