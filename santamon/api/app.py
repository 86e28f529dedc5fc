"""The application factory: settings in, a ready-to-run aiohttp application out."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import aiohttp
import orjson
from aiohttp import web

from ..config import Settings
from ..jobs.board import JobBoard
from ..jobs.scheduler import scheduler_ctx
from ..metrics import Metrics
from ..ratelimit import BodyBudget, FailedAuthLimiter
from ..store import SQLiteStore
from .auth import KeyRing
from .hardening import (
    HANDLER_ARGS,
    MAX_BODY_BYTES,
    UNAUTHENTICATED_BODY_BUDGET,
    answer_protocol_errors_in_json,
    body_middleware,
    security_headers,
    static_files_middleware,
)
from .keys import (
    AUTH_LIMITER,
    BODY_BUDGET,
    HTTP_SESSION,
    JOB_BOARD,
    KEYRING,
    METRICS,
    OPENAPI,
    SESSIONS,
    SETTINGS,
    STORE,
)
from .middlewares import auth_middleware, error_middleware
from .observe import observe_middleware
from .routes import setup_routes
from .session import SessionStore
from .spec import openapi_document

# Failed authentications allowed per client address: a burst, refilled over the period.
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_PERIOD = 60.0


class StartupError(Exception):
    """The service cannot start; the message names what is wrong (for one line on stderr)."""


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    path = app[SETTINGS].db_path
    store = SQLiteStore(path, on_commit=app[METRICS].observe_commit)
    try:
        await store.open()
    except (sqlite3.Error, OSError, RuntimeError) as exc:
        raise StartupError(f"database {path}: {exc}") from exc
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
    answer_protocol_errors_in_json()
    # Bodies are read by body_middleware, bounded per route; client_max_size bounds any other
    # read of a body (aiohttp's request.read()).
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args=HANDLER_ARGS,
                          middlewares=[observe_middleware, error_middleware, auth_middleware,
                                       body_middleware, static_files_middleware])
    app[SETTINGS] = settings
    app[KEYRING] = KeyRing(settings.api_key, settings.admin_key)
    app[JOB_BOARD] = JobBoard()
    app[SESSIONS] = SessionStore()
    app[AUTH_LIMITER] = FailedAuthLimiter(burst=AUTH_FAILURE_BURST, period=AUTH_FAILURE_PERIOD)
    app[BODY_BUDGET] = BodyBudget(UNAUTHENTICATED_BODY_BUDGET)
    app[METRICS] = Metrics()
    app[METRICS].watch_jobs(app[JOB_BOARD])
    app[OPENAPI] = orjson.dumps(openapi_document())
    app.on_response_prepare.append(security_headers)
    # Started in this order and stopped in reverse: the scheduler stops before the HTTP
    # session and the store close.
    app.cleanup_ctx.extend([_store_ctx, _http_session_ctx, scheduler_ctx])
    setup_routes(app)
    return app
