"""The composition root: settings -> store -> HTTP session -> jobs -> the web application.

Everything is wired here and only here; dependencies run one way (this module -> api, jobs,
store; api -> jobs, store; jobs -> store; store -> domain). `web.run_app` is the CLI's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
from aiohttp import web

from . import timeutil
from .api.auth.keys import KeyRing
from .api.auth.limiter import FailedAuthLimiter
from .api.auth.sessions import ConsoleSessions
from .api.middlewares import MIDDLEWARES, security_headers
from .api.routes import openapi_document, setup_routes
from .api.state import (
    AUTH_LIMITER,
    CLOCK,
    HEALTH,
    HTTP_SESSION,
    JOBS,
    KEYRING,
    LIVENESS,
    METRICS,
    OPENAPI,
    SESSIONS,
    SETTINGS,
    STORE,
    HealthCache,
)
from .config import Settings
from .jobs.scheduler import Jobs
from .metrics import Metrics
from .store import HistoryRule, Liveness, create_store

MAX_BODY_BYTES = 8 * 1024 * 1024  # a full batch; a single signal is at most ~100 KB
# Failed authentications allowed per client address: a burst, refilled over the period.
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_PERIOD = 60.0


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = create_store(settings, clock=app[CLOCK], on_commit=app[METRICS].observe_commit)
    await store.open()
    liveness = Liveness(store, interval=settings.heartbeat_flush_interval,
                        history=HistoryRule(settings.heartbeat_sample), clock=app[CLOCK])
    liveness.start()
    app[STORE] = store
    app[LIVENESS] = liveness
    app[SESSIONS] = ConsoleSessions(store, clock=app[CLOCK])
    yield
    await liveness.stop()  # writes the heartbeats acknowledged so far
    await store.close()


async def _http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(headers={"User-Agent": "santamon-backend"}) as session:
        app[HTTP_SESSION] = session
        yield


async def _jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    jobs = Jobs(app[STORE], app[LIVENESS], app[SETTINGS], app[HTTP_SESSION], app[CLOCK])
    app[METRICS].watch(jobs.board.collector())
    app[METRICS].watch(jobs.forwarder.collector())
    app[JOBS] = jobs
    jobs.start()
    yield
    await jobs.stop()  # before the HTTP session and the store close under a running job


def create_app(settings: Settings, *,
               clock: Callable[[], int] = timeutil.now_ns) -> web.Application:
    if not settings.admin_key:
        raise ValueError("settings.admin_key must be set (see config.ensure_admin_key)")
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=MIDDLEWARES)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[KEYRING] = KeyRing(settings.api_key, settings.admin_key)
    app[AUTH_LIMITER] = FailedAuthLimiter(burst=AUTH_FAILURE_BURST, period=AUTH_FAILURE_PERIOD)
    app[METRICS] = Metrics()
    app[HEALTH] = HealthCache()
    app[OPENAPI] = orjson.dumps(openapi_document())
    app.on_response_prepare.append(security_headers)
    # Started in this order and stopped in reverse: the jobs stop before the HTTP session and
    # the store close.
    app.cleanup_ctx.extend([_store_ctx, _http_session_ctx, _jobs_ctx])
    setup_routes(app)
    return app
