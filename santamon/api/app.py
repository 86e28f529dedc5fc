"""The application factory: settings in, a ready-to-run aiohttp application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from ..config import Settings
from ..metrics import Metrics
from ..ratelimit import FailedAuthLimiter
from ..store import SQLiteStore
from .auth import KeyRing
from .hardening import body_deadline_middleware, security_headers
from .keys import AUTH_LIMITER, KEYRING, METRICS, OPENAPI, SETTINGS, STORE
from .middlewares import auth_middleware, error_middleware
from .observe import observe_middleware
from .routes import setup_routes
from .spec import openapi_document

MAX_BODY_BYTES = 8 * 1024 * 1024  # a full batch; a single signal is at most ~100 KB
# Failed authentications allowed per client address: a burst, refilled over the period.
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_PERIOD = 60.0


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = SQLiteStore(app[SETTINGS].db_path, on_commit=app[METRICS].observe_commit)
    await store.open()
    app[STORE] = store
    yield
    await store.close()


def create_app(settings: Settings) -> web.Application:
    if not settings.admin_key:
        raise ValueError("settings.admin_key must be set (see config.ensure_admin_key)")
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[observe_middleware, error_middleware, auth_middleware,
                                       body_deadline_middleware])
    app[SETTINGS] = settings
    app[KEYRING] = KeyRing(settings.api_key, settings.admin_key)
    app[AUTH_LIMITER] = FailedAuthLimiter(burst=AUTH_FAILURE_BURST, period=AUTH_FAILURE_PERIOD)
    app[METRICS] = Metrics()
    app[OPENAPI] = orjson.dumps(openapi_document())
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_store_ctx)
    setup_routes(app)
    return app
