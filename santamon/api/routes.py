"""The API in one table: each route once, with the role it needs and its documentation.

The router, the auth middleware (the role) and /openapi.json are all derived from ROUTES, so
what is enforced and what is documented cannot differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from .. import __version__
from . import static
from .auth.keys import Role
from .models import (
    MAX_BATCH,
    AgentList,
    AgentQuery,
    AgentTimeline,
    BulkStatusResult,
    BulkStatusUpdate,
    HealthOut,
    HeartbeatAck,
    HeartbeatIn,
    IndexOut,
    IngestResponse,
    JobsOut,
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
    TimelineQuery,
    VolumeOut,
    VolumeQuery,
)
from .openapi import Body, Operation, build_openapi
from .state import ROUTE_ROLES
from .views import agents, console, ingest, ops, signals

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
                      "the signal is durably stored. 413 also when one signal's context "
                      "exceeds 100,000 bytes.",
          body=Body(SignalIn, also_list=True, max_items=MAX_BATCH)),
    Route("POST", "/agents/heartbeat", ingest.heartbeat, Role.AGENT,
          "Report that an agent is alive", "agents", {200: HeartbeatAck},
          body=Body(HeartbeatIn)),
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
          body=Body(StatusUpdate)),
    Route("POST", "/signals/status", signals.bulk_update_status, Role.ANALYST,
          "Triage many signals in one transaction", "signals", {200: BulkStatusResult},
          body=Body(BulkStatusUpdate)),
    Route("GET", "/signals/volume", signals.signal_volume, Role.ANALYST,
          "Signals per time bucket, by severity", "signals", {200: VolumeOut},
          query=VolumeQuery,
          description="`bucket` is a duration of at least 1m (e.g. `15m`, `1h`) or `auto`; "
                      "at most 2,000 buckets."),
    Route("GET", "/stats", signals.stats, Role.ANALYST,
          "Totals and breakdowns", "signals", {200: StatsOut}),
    Route("GET", "/agents", agents.list_agents, Role.ANALYST,
          "Agents and their latest heartbeat", "agents", {200: AgentList}, query=AgentQuery),
    Route("GET", "/agents/{agent_id}", agents.agent_timeline, Role.ANALYST,
          "One agent's timeline", "agents",
          {200: AgentTimeline, 404: "No agent has this id."}, query=TimelineQuery,
          path_params={"agent_id": "The agent's id as it sends it (usually the hostname)."},
          description="Online and offline intervals, availability per UTC day, agent and "
                      "macOS versions and reboots, worked out from the heartbeats the "
                      "agent's history keeps (by default the whole retention)."),
    # -- the console -------------------------------------------------------------------------
    Route("GET", "/ui", console.console_page, Role.PUBLIC,
          "The console", "console", {200: "An HTML page."}, content_type="text/html"),
    Route("POST", "/session", console.create_session, Role.PUBLIC,
          "Sign the console in with the analyst key", "console",
          {200: SessionCreated, 401: "Not the analyst key.",
           429: "Too many failed sign-ins from this address; see `Retry-After`."},
          body=Body(SessionLogin)),
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
    for route in ROUTES:
        registered = app.router.add_route(route.method, route.path, route.handler)
        roles[registered] = route.role
    app[ROUTE_ROLES] = roles
    # The console's own files: public, never a symlink out of the folder, no listings.
    if static.STATIC_DIR.is_dir():  # an install without the console still serves the API
        app.router.add_static("/static", static.STATIC_DIR, follow_symlinks=False,
                              show_index=False)


def openapi_document() -> dict:
    return build_openapi([route.operation() for route in ROUTES], title="Santamon Backend",
                         version=__version__, description=DESCRIPTION)
