"""The composition root: settings -> store -> connection problems -> keys -> HTTP session ->
jobs -> the web application.

Everything is wired here and only here; dependencies run one way (this module -> api, jobs,
store; api -> jobs, store; jobs -> store; store -> domain). `web.run_app` is the CLI's.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
from aiohttp import web

from . import timeutil
from .api.auth.agents import AgentGuard
from .api.auth.keys import KeyRing
from .api.auth.limiter import BodyBudget, FailedAuthLimiter, WarningLimiter
from .api.auth.sessions import ConsoleSessions
from .api.auth.sync import KeySync
from .api.middlewares import MIDDLEWARES, answer_protocol_errors_in_json, security_headers
from .api.problems import record_key_misuse, tls_handshake_failed
from .api.routes import openapi_document, setup_routes
from .api.silencing import SilenceCache
from .api.state import (
    AGENT_GUARD,
    AUTH_LIMITER,
    BODY_BUDGET,
    CLOCK,
    HEALTH,
    HTTP_SESSION,
    INSTANCE,
    JOBS,
    KEY_SYNC,
    KEY_WARNINGS,
    KEYRING,
    LIVENESS,
    METRICS,
    OPENAPI,
    PROBLEMS,
    SESSIONS,
    SETTINGS,
    SILENCES,
    STORE,
    HealthCache,
)
from .api.tls import TLSSite
from .config import Settings, instance_name
from .jobs.problems import ConnectionProblems
from .jobs.scheduler import Jobs
from .metrics import Metrics
from .store import HistoryRule, Liveness, create_store

# Each route reads at most its own limit (api/routes.py); this bounds any other read.
MAX_BODY_BYTES = 8 * 1024 * 1024
# Failed authentications allowed per client address: a burst, refilled over the period.
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_PERIOD = 60.0
# The sign-in reads its body before any key is checked, and so does the warning about an agent
# request refused for its key (its first 4 KiB, for the host it claims): all such bodies in
# progress together hold at most this much (128 sign-ins); beyond it a sign-in gets 503 at
# once, and a warning goes without the claimed host.
UNAUTHENTICATED_BODY_BUDGET = 1024 * 1024
# An idle connection, or one whose request headers have not all arrived this long after it
# opened or its last answer, is closed (aiohttp counts both from the same moment).
KEEPALIVE_TIMEOUT_SECONDS = 15.0
# aiohttp's own limits, stated: the request line and each header at most 8 KiB, 128 headers.
HANDLER_ARGS = {"keepalive_timeout": KEEPALIVE_TIMEOUT_SECONDS, "max_line_size": 8190,
                "max_field_size": 8190, "max_headers": 128}


class StartupError(Exception):
    """The service cannot start; the message names what is wrong (for one line on stderr)."""


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = create_store(settings, clock=app[CLOCK], on_commit=app[METRICS].observe_commit)
    try:
        await store.open()
    except Exception as exc:
        where = "PostgreSQL" if settings.database_url else str(settings.db_path)
        raise StartupError(f"database {where}: {exc}") from exc
    liveness = Liveness(store, interval=settings.heartbeat_flush_interval,
                        history=HistoryRule(settings.heartbeat_sample), clock=app[CLOCK])
    liveness.start()
    app[STORE] = store
    app[LIVENESS] = liveness
    app[SESSIONS] = ConsoleSessions(store, clock=app[CLOCK])
    silences = SilenceCache(store, app[CLOCK])
    try:
        await silences.start()
    except BaseException:
        await store.close()
        raise
    app[SILENCES] = silences
    yield
    await liveness.stop()  # writes the heartbeats acknowledged so far
    await silences.stop()
    await store.close()


async def _problems_ctx(app: web.Application) -> AsyncIterator[None]:
    problems = ConnectionProblems(app[STORE], app[CLOCK])
    app[PROBLEMS] = problems
    problems.start()
    yield
    await problems.stop()  # writes what is left, before the store closes


async def _keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """The stored keys, loaded before the service listens (a restart sees every revocation
    at once) and kept in step afterwards; their last uses are written when it stops."""
    sync = KeySync(app[STORE], app[KEYRING], app[CLOCK])
    await sync.start()
    app[KEY_SYNC] = sync
    app[AGENT_GUARD] = AgentGuard(app[STORE], app[METRICS], app[CLOCK],
                                  new_agents_per_hour=app[SETTINGS].new_agents_per_hour,
                                  on_misuse=record_key_misuse)
    yield
    await sync.stop()


async def _http_session_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(headers={"User-Agent": "santamon-backend"}) as session:
        app[HTTP_SESSION] = session
        yield


async def _jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    jobs = Jobs(app[STORE], app[LIVENESS], app[SETTINGS], app[HTTP_SESSION], app[CLOCK],
                instance=app[INSTANCE])
    app[METRICS].watch(jobs.board.collector())
    app[METRICS].watch(jobs.forwarder.collector())
    app[JOBS] = jobs
    jobs.start()
    yield
    await jobs.stop()  # before the HTTP session and the store close under a running job


def create_app(settings: Settings, *, clock: Callable[[], int] = timeutil.now_ns,
               instance: str | None = None) -> web.Application:
    """`instance` names this process in GET /jobs (default: config.instance_name)."""
    if not settings.admin_key:
        raise ValueError("settings.admin_key must be set (see config.ensure_admin_key)")
    answer_protocol_errors_in_json()
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args=HANDLER_ARGS,
                          middlewares=MIDDLEWARES)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[INSTANCE] = instance or instance_name(settings)
    app[KEYRING] = KeyRing(settings.api_key, settings.admin_key,
                           bound_only=settings.agent_keys == "bound-only", clock=clock)
    app[AUTH_LIMITER] = FailedAuthLimiter(burst=AUTH_FAILURE_BURST, period=AUTH_FAILURE_PERIOD)
    app[KEY_WARNINGS] = WarningLimiter()
    app[BODY_BUDGET] = BodyBudget(UNAUTHENTICATED_BODY_BUDGET)
    app[METRICS] = Metrics()
    app[HEALTH] = HealthCache()
    app[OPENAPI] = orjson.dumps(openapi_document())
    app.on_response_prepare.append(security_headers)
    # Started in this order and stopped in reverse: the jobs stop before the HTTP session and
    # the store close, and the problems counted and the keys' last uses are written before the
    # store closes.
    app.cleanup_ctx.extend([_store_ctx, _problems_ctx, _keys_ctx, _http_session_ctx, _jobs_ctx])
    setup_routes(app)
    return app


def listening_site(runner: web.AppRunner, settings: Settings, tls: ssl.SSLContext | None, *,
                   reuse_port: bool = False) -> web.TCPSite:
    """Where the service listens: plain HTTP, or HTTPS whose failed handshakes are logged and
    counted (api/tls.py). `reuse_port`: one of several workers sharing the port."""
    if tls is None:
        return web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port)
    on_failure = functools.partial(tls_handshake_failed, runner.app, WarningLimiter())
    return TLSSite(runner, settings.host, settings.port, ssl_context=tls,
                   on_failure=on_failure, reuse_port=reuse_port)
