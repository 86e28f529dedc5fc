"""Every piece of application state, typed, in one place."""

from aiohttp import web

from ..config import Settings
from ..store import Store
from .auth import KeyRing, Role

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)

# Per request: the caller's role, set by the auth middleware.
PRINCIPAL = web.RequestKey("principal", Role)
