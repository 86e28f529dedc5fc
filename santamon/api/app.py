"""The application factory: settings in, a ready-to-run aiohttp application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..config import Settings
from ..jobs.board import JobBoard
from ..jobs.scheduler import scheduler_ctx
from ..store import SQLiteStore
from .auth import KeyRing
from .console import add_security_headers
from .keys import HTTP_SESSION, JOB_BOARD, KEYRING, SESSIONS, SETTINGS, STORE
from .middlewares import auth_middleware, error_middleware
from .routes import setup_routes
from .session import SessionStore

MAX_BODY_BYTES = 8 * 1024 * 1024  # a full batch; a single signal is at most ~100 KB


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = SQLiteStore(app[SETTINGS].db_path)
    await store.open()
    app[STORE] = store
    yield
    await store.close()


async def _http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(headers={"User-Agent": "santamon-backend"}) as session:
        app[HTTP_SESSION] = session
        yield


def create_app(settings: Settings) -> web.Application:
    if not settings.admin_key:
        raise ValueError("settings.admin_key must be set (see config.ensure_admin_key)")
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[error_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[KEYRING] = KeyRing(settings.api_key, settings.admin_key)
    app[JOB_BOARD] = JobBoard()
    app[SESSIONS] = SessionStore()
    app.on_response_prepare.append(add_security_headers)
    # Started in this order and stopped in reverse: the scheduler stops before the HTTP
    # session and the store close.
    app.cleanup_ctx.extend([_store_ctx, _http_session_ctx, scheduler_ctx])
    setup_routes(app)
    return app
