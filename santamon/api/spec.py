"""The API as /openapi.json describes it: each route with the models it accepts and returns."""

from __future__ import annotations

from .. import __version__
from ..models import (
    MAX_BATCH,
    AgentList,
    AgentQuery,
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
    VolumeOut,
    VolumeQuery,
)
from ..openapi import Body, Operation, build_openapi

SIGNAL_ID = {"signal_id": "The signal's id as the agent sent it."}

OPERATIONS = [
    Operation(
        "POST", "/ingest", "Ship one signal or a batch", "agents", "agent",
        {200: IngestResponse},
        description="One signal object, or a JSON array of up to 1,000 (all stored or none). "
                    "Deduplicated on `signal_id`: the first write wins. A 200 means the "
                    "signal is durably stored. 413 also when one signal's context exceeds "
                    "100,000 bytes.",
        body=Body(SignalIn, also_list=True, max_items=MAX_BATCH),
    ),
    Operation(
        "POST", "/agents/heartbeat", "Report that an agent is alive", "agents", "agent",
        {200: HeartbeatAck}, body=Body(HeartbeatIn),
    ),
    Operation(
        "GET", "/signals", "List signals, newest first", "signals", "analyst",
        {200: SignalPageOut}, query=SignalQuery,
        description="Filters combine with AND. Page with `cursor` = the previous `next_cursor`.",
    ),
    Operation(
        "GET", "/signals/{signal_id}", "One signal with its history", "signals", "analyst",
        {200: SignalDetail, 404: "No signal has this id."}, path_params=SIGNAL_ID,
    ),
    Operation(
        "GET", "/signal", "One signal with its history, named in the query", "signals",
        "analyst", {200: SignalDetail, 404: "No signal has this id."}, query=SignalIdQuery,
        description="The same as `GET /signals/{signal_id}`, for any id: browsers resolve "
                    "the path segments `.` and `..` away (`%2E%2E` too), and "
                    "`/signals/volume` is another route.",
    ),
    Operation(
        "PATCH", "/signals/{signal_id}/status", "Triage one signal", "signals", "analyst",
        {200: StatusChanged, 404: "No signal has this id."}, path_params=SIGNAL_ID,
        body=Body(StatusUpdate),
    ),
    Operation(
        "POST", "/signals/status", "Triage many signals in one transaction", "signals",
        "analyst", {200: BulkStatusResult}, body=Body(BulkStatusUpdate),
    ),
    Operation(
        "GET", "/agents", "Agents and their latest heartbeat", "agents", "analyst",
        {200: AgentList}, query=AgentQuery,
    ),
    Operation("GET", "/stats", "Totals and breakdowns", "signals", "analyst", {200: StatsOut}),
    Operation(
        "GET", "/signals/volume", "Signals per time bucket, by severity", "signals", "analyst",
        {200: VolumeOut}, query=VolumeQuery,
        description="`bucket` is a duration of at least 1m (e.g. `15m`, `1h`) or `auto`; "
                    "at most 2,000 buckets.",
    ),
    Operation("GET", "/jobs", "Background jobs and forwarding", "operations", "analyst",
              {200: JobsOut}),
    Operation(
        "POST", "/session", "Sign the console in with the analyst key", "console", "public",
        {200: SessionCreated, 401: "Not the analyst key.",
         429: "Too many failed sign-ins from this address; see `Retry-After`."},
        body=Body(SessionLogin),
    ),
    Operation("GET", "/session", "The console session's CSRF token", "console", "public",
              {200: SessionInfo, 401: "Not signed in."}),
    Operation("DELETE", "/session", "Sign the console out", "console", "public",
              {200: SignedOut, 403: "The session cookie came without its X-CSRF-Token."}),
    Operation("GET", "/ui", "The console", "console", "public", {200: "An HTML page."},
              content_type="text/html"),
    Operation(
        "GET", "/health", "Whether the database takes writes", "operations", "public",
        {200: HealthOut, 503: "The database cannot be written."},
    ),
    Operation("GET", "/", "Service name, version and endpoints", "operations", "public",
              {200: IndexOut}),
    Operation(
        "GET", "/metrics", "Prometheus metrics", "operations", "analyst",
        {200: "Metrics in the Prometheus text format."}, content_type="text/plain",
    ),
    Operation("GET", "/openapi.json", "This document", "operations", "public",
              {200: "The OpenAPI 3.1 document."}, content_type="application/json"),
    Operation("GET", "/docs", "API documentation (Swagger UI)", "operations", "public",
              {200: "An HTML page."}, content_type="text/html"),
    Operation("GET", "/redoc", "API documentation (ReDoc)", "operations", "public",
              {200: "An HTML page."}, content_type="text/html"),
]

DESCRIPTION = """\
The server Santamon agents ship detections (signals) and heartbeats to, and analysts triage.

**Authentication.** Agent keys go in `X-API-Key` and may only call `POST /ingest` and
`POST /agents/heartbeat`. The analyst key (`Authorization: Bearer <key>` or `X-API-Key`) may
call everything. Use "Authorize" with either to try requests from this page.

Every error is JSON: `{"error": "...", ...}`; 422 adds `details`. Timestamps are RFC 3339;
stored ones are UTC with nanoseconds (`2026-11-03T22:22:07.120934551Z`).
"""


def openapi_document() -> dict:
    return build_openapi(OPERATIONS, title="Santamon Backend", version=__version__,
                         description=DESCRIPTION)
