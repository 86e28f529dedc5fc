"""The API in one table: each route once, with the role it needs, the largest body it reads,
and its documentation.

The router, the auth and body middlewares and /openapi.json are all derived from ROUTES, so
what is enforced and what is documented cannot differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from .. import __version__
from . import static
from .auth.keys import Role
from .middlewares import expect_continue
from .models import (
    MAX_BATCH,
    AgentList,
    AgentQuery,
    BulkStatusResult,
    BulkStatusUpdate,
    ConnectionProblemsOut,
    HealthOut,
    HeartbeatAck,
    HeartbeatIn,
    IndexOut,
    IngestResponse,
    JobsOut,
    ProblemsQuery,
    SessionCreated,
    SessionInfo,
    SessionLogin,
    SignalDetail,
    SignalIdQuery,
    SignalIn,
    SignalPageOut,
    SignalQuery,
    SignedOut,
    StatsOut,
    StatusChanged,
    StatusUpdate,
    VolumeOut,
    VolumeQuery,
)
from .openapi import Body, Operation, build_openapi
from .state import ROUTE_BODY_LIMITS, ROUTE_ROLES
from .views import agents, console, ingest, ops, signals

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The largest body each route reads; a route without one reads none (aiohttp discards what is
# sent). A full batch for /ingest (one signal is at most ~100 KB), an analyst's ids and notes,
# a key at sign-in.
KIB, MIB = 1024, 1024 * 1024
INGEST_BODY_LIMIT = 8 * MIB
HEARTBEAT_BODY_LIMIT = 64 * KIB
STATUS_BODY_LIMIT = 64 * KIB
BULK_STATUS_BODY_LIMIT = 2 * MIB  # 1,000 ids of up to 256 characters, and a note
SESSION_BODY_LIMIT = 8 * KIB  # {"key": "..."}: a key is at most 1,024 characters


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: Role
    summary: str
    tag: str
    responses: dict[int, type | str]
    description: str = ""
    body: Body | None = None
    max_body: int = 0  # bytes; 0: the route reads no body
    query: type | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def operation(self) -> Operation:
        return Operation(self.method, self.path, self.summary, self.tag,
                         self.role.name.lower(), self.responses, self.description, self.body,
                         self.query, self.path_params, self.content_type)


SIGNAL_ID = {"signal_id": "The signal's id as the agent sent it."}

ROUTES = [
    # -- agents ------------------------------------------------------------------------------
    Route("POST", "/ingest", ingest.ingest, Role.AGENT,
          "Ship one signal or a batch", "agents", {200: IngestResponse},
          description="One signal object, or a JSON array of up to 1,000 (all stored or "
                      "none). Deduplicated on `signal_id`: the first write wins. A 200 means "
                      "the signal is durably stored. What is too large is stored cut, with a "
                      "marker, never refused (the agent retries a 4xx forever): a context over "
                      "100,000 bytes as JSON (the longest strings first), a title over 512 "
                      "characters, a description over 2,000, tags beyond 50 or 64 characters; "
                      "the stored signal's `shortened` says what was cut. 413 only for a body "
                      "over 8 MiB.",
          body=Body(SignalIn, also_list=True, max_items=MAX_BATCH),
          max_body=INGEST_BODY_LIMIT),
    Route("POST", "/agents/heartbeat", ingest.heartbeat, Role.AGENT,
          "Report that an agent is alive", "agents", {200: HeartbeatAck},
          body=Body(HeartbeatIn), max_body=HEARTBEAT_BODY_LIMIT),
    # -- analysts ----------------------------------------------------------------------------
    Route("GET", "/signals", signals.list_signals, Role.ANALYST,
          "List signals, newest first", "signals", {200: SignalPageOut}, query=SignalQuery,
          description="Filters combine with AND. Page with `cursor` = the previous "
                      "`next_cursor`."),
    Route("GET", "/signals/{signal_id}", signals.get_signal, Role.ANALYST,
          "One signal with its history", "signals",
          {200: SignalDetail, 404: "No signal has this id."}, path_params=SIGNAL_ID),
    Route("GET", "/signal", signals.get_signal_by_query, Role.ANALYST,
          "One signal with its history, named in the query", "signals",
          {200: SignalDetail, 404: "No signal has this id."}, query=SignalIdQuery,
          description="The same as `GET /signals/{signal_id}`, for any id: browsers resolve "
                      "the path segments `.` and `..` away (`%2E%2E` too), and "
                      "`/signals/volume` is another route."),
    Route("PATCH", "/signals/{signal_id}/status", signals.update_status, Role.ANALYST,
          "Triage one signal", "signals",
          {200: StatusChanged, 404: "No signal has this id."}, path_params=SIGNAL_ID,
          body=Body(StatusUpdate), max_body=STATUS_BODY_LIMIT),
    Route("POST", "/signals/status", signals.bulk_update_status, Role.ANALYST,
          "Triage many signals in one transaction", "signals", {200: BulkStatusResult},
          body=Body(BulkStatusUpdate), max_body=BULK_STATUS_BODY_LIMIT),
    Route("GET", "/signals/volume", signals.signal_volume, Role.ANALYST,
          "Signals per time bucket, by severity", "signals", {200: VolumeOut},
          query=VolumeQuery,
          description="`bucket` is a duration from 1m to 3660d (e.g. `15m`, `1h`) or `auto` "
                      "(about 120 buckets); at most 2,000 buckets. Without it: 1h, widened "
                      "as needed. Without `since`: from the first signal, leaving out Go's "
                      "zero time (0001-01-01)."),
    Route("GET", "/stats", signals.stats, Role.ANALYST,
          "Totals and breakdowns", "signals", {200: StatsOut}),
    Route("GET", "/agents", agents.list_agents, Role.ANALYST,
          "Agents and their latest heartbeat", "agents", {200: AgentList}, query=AgentQuery),
    Route("GET", "/agents/problems", agents.connection_problems, Role.ANALYST,
          "Agent connection problems by client address", "agents",
          {200: ConnectionProblemsOut}, query=ProblemsQuery,
          description="What keeps agents from reaching this service, per client address and "
                      "kind, over the last `hours` hours (1-168, default 24): failed TLS "
                      "handshakes (`tls_failure`), wrong or revoked agent keys (`wrong_key`), "
                      "a key bound to one host used for another (`key_misuse`), and signals "
                      "stored with their oversized context shortened (`context_shortened`). "
                      "Counted per hour by every instance; the most recently seen first."),
    # -- the console -------------------------------------------------------------------------
    Route("GET", "/ui", console.console_page, Role.PUBLIC,
          "The console", "console", {200: "An HTML page."}, content_type="text/html"),
    Route("POST", "/session", console.create_session, Role.PUBLIC,
          "Sign the console in with the analyst key", "console",
          {200: SessionCreated, 401: "Not the analyst key.",
           429: "Too many failed sign-ins from this address; see `Retry-After`."},
          body=Body(SessionLogin), max_body=SESSION_BODY_LIMIT),
    Route("GET", "/session", console.get_session, Role.PUBLIC,
          "The console session's CSRF token", "console",
          {200: SessionInfo, 401: "Not signed in."}),
    Route("DELETE", "/session", console.delete_session, Role.PUBLIC,
          "Sign the console out", "console",
          {200: SignedOut, 403: "The session cookie came without its X-CSRF-Token."}),
    # -- operations --------------------------------------------------------------------------
    Route("GET", "/health", ops.health, Role.PUBLIC,
          "Whether the database takes writes", "operations",
          {200: HealthOut, 503: "The database cannot be written."}),
    Route("GET", "/jobs", ops.jobs, Role.ANALYST,
          "Background jobs and forwarding", "operations", {200: JobsOut}),
    Route("GET", "/metrics", ops.prometheus_metrics, Role.ANALYST,
          "Prometheus metrics", "operations",
          {200: "Metrics in the Prometheus text format."}, content_type="text/plain"),
    Route("GET", "/", ops.index, Role.PUBLIC,
          "Service name, version and endpoints", "operations", {200: IndexOut}),
    Route("GET", "/openapi.json", ops.openapi_json, Role.PUBLIC,
          "This document", "operations", {200: "The OpenAPI 3.1 document."}),
    Route("GET", "/docs", ops.swagger_ui, Role.PUBLIC,
          "API documentation (Swagger UI)", "operations", {200: "An HTML page."},
          content_type="text/html"),
    Route("GET", "/redoc", ops.redoc, Role.PUBLIC,
          "API documentation (ReDoc)", "operations", {200: "An HTML page."},
          content_type="text/html"),
]

DESCRIPTION = """\
The server Santamon agents ship detections (signals) and heartbeats to, and analysts triage.

**Authentication.** Agent keys go in `X-API-Key` and may only call `POST /ingest` and
`POST /agents/heartbeat`. The analyst key (`Authorization: Bearer <key>` or `X-API-Key`) may
call everything. Use "Authorize" with either to try requests from this page.

Every error is JSON: `{"error": "...", ...}`; 422 adds `details`. Timestamps are RFC 3339;
stored ones are UTC with nanoseconds (`2026-11-03T22:22:07.120934551Z`).
"""


def setup_routes(app: web.Application) -> None:
    roles: dict[web.AbstractRoute, Role] = {}
    body_limits: dict[web.AbstractRoute, int] = {}
    for route in ROUTES:
        # `Expect: 100-continue` is answered only once the key allows the route.
        registered = app.router.add_route(route.method, route.path, route.handler,
                                          expect_handler=expect_continue)
        roles[registered] = route.role
        if route.max_body:
            body_limits[registered] = route.max_body
    app[ROUTE_ROLES] = roles
    app[ROUTE_BODY_LIMITS] = body_limits
    # The console's own files: public, never a symlink out of the folder, no listings.
    if static.STATIC_DIR.is_dir():  # an install without the console still serves the API
        app.router.add_static("/static", static.STATIC_DIR, follow_symlinks=False,
                              show_index=False, expect_handler=expect_continue)


def openapi_document() -> dict:
    return build_openapi([route.operation() for route in ROUTES], title="Santamon Backend",
                         version=__version__, description=DESCRIPTION)
