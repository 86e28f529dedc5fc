"""The application factory: settings in, a ready-to-run aiohttp application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..config import Settings
from ..store import SQLiteStore
from .auth import KeyRing
from .keys import KEYRING, SETTINGS, STORE
from .middlewares import auth_middleware, error_middleware
from .routes import setup_routes

MAX_BODY_BYTES = 8 * 1024 * 1024  # a full batch; a single signal is at most ~100 KB


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = SQLiteStore(app[SETTINGS].db_path)
    await store.open()
    app[STORE] = store
    yield
    await store.close()


def create_app(settings: Settings) -> web.Application:
    if not settings.admin_key:
        raise ValueError("settings.admin_key must be set (see config.ensure_admin_key)")
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[error_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[KEYRING] = KeyRing(settings.api_key, settings.admin_key)
    app.cleanup_ctx.append(_store_ctx)
    setup_routes(app)
    return app
