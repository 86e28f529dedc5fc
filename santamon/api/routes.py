"""The API in one table: each route once, with the access it needs, the largest body it reads,
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
from .auth.keys import Access
from .middlewares import expect_continue
from .models import (
    MAX_BATCH,
    AgentKeyList,
    AgentKeyOut,
    AgentKeyQuery,
    AgentKeyRotate,
    AgentKeyRotated,
    AgentKeysCreate,
    AgentKeysIssued,
    AgentList,
    AgentQuery,
    AgentTimeline,
    AgentTimelineQuery,
    BulkStatusResult,
    BulkStatusUpdate,
    ConnectionProblemsOut,
    GroupPageOut,
    GroupQuery,
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
    SilenceCreated,
    SilenceIn,
    SilenceList,
    SilenceMatchersIn,
    SilenceOut,
    SilencePreview,
    SilenceQuery,
    StatsOut,
    StatusChanged,
    StatusUpdate,
    TimelineQuery,
    VolumeOut,
    VolumeQuery,
)
from .openapi import Body, Operation, build_openapi
from .state import ROUTE_ACCESS, ROUTE_BODY_LIMITS
from .views import agents, console, ingest, keys, ops, signals, silences

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
AGENT_KEYS_BODY_LIMIT = 512 * KIB  # 1,000 host names of up to 255 characters
ROTATE_BODY_LIMIT = 8 * KIB
SILENCE_BODY_LIMIT = 64 * KIB  # matchers and a comment of up to 2,000 characters


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    access: Access
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
                         self.access.value, self.responses, self.description, self.body,
                         self.query, self.path_params, self.content_type)


SIGNAL_ID = {"signal_id": "The signal's id as the agent sent it."}
KEY_ID = {"key_id": "The agent key's id (never the key)."}
SILENCE_ID = {"silence_id": "The silence's id (a number)."}
BOUND_ELSEWHERE = ("The key is bound to another host than the one named (counted, listed in "
                   "`GET /agents/problems` as `key_misuse`, and raised once an hour as an "
                   "AGENT-KEY-MISUSE alert).")
NEW_AGENTS_THROTTLED = ("The database is unavailable, or the key brought more new agent ids "
                        "within an hour than allowed (agents it already brought are not "
                        "limited); see `Retry-After`.")

ROUTES = [
    # -- agents ------------------------------------------------------------------------------
    Route("POST", "/ingest", ingest.ingest, Access.AGENT,
          "Ship one signal or a batch", "agents",
          {200: IngestResponse, 403: BOUND_ELSEWHERE, 503: NEW_AGENTS_THROTTLED},
          description="One signal object, or a JSON array of up to 1,000 (all stored or "
                      "none). Deduplicated on `signal_id`: the first write wins. A 200 means "
                      "the signal is durably stored. What is too large is stored cut, with a "
                      "marker, never refused (the agent retries a 4xx forever): a context over "
                      "100,000 bytes as JSON (the longest strings first), a title over 512 "
                      "characters, a description over 2,000, tags beyond 50 or 64 characters; "
                      "the stored signal's `shortened` says what was cut. 413 only for a body "
                      "over 8 MiB. A key bound to a host may only send signals whose `host_id` "
                      "is that host: a batch naming any other is refused whole (403).",
          body=Body(SignalIn, also_list=True, max_items=MAX_BATCH),
          max_body=INGEST_BODY_LIMIT),
    Route("POST", "/agents/heartbeat", ingest.heartbeat, Access.AGENT,
          "Report that an agent is alive", "agents",
          {200: HeartbeatAck, 403: BOUND_ELSEWHERE, 503: NEW_AGENTS_THROTTLED},
          description="A key bound to a host may only send heartbeats whose `agent_id` is "
                      "that host.",
          body=Body(HeartbeatIn), max_body=HEARTBEAT_BODY_LIMIT),
    # -- analysts ----------------------------------------------------------------------------
    Route("GET", "/signals", signals.list_signals, Access.READ,
          "List signals, newest first", "signals", {200: SignalPageOut}, query=SignalQuery,
          description="Filters combine with AND. Page with `cursor` = the previous "
                      "`next_cursor`. Signals an active silence matched when they arrived "
                      "are left out unless `silenced` says otherwise."),
    Route("GET", "/signals/groups", signals.signal_groups, Access.READ,
          "Repeats grouped by rule and host, newest last-seen first", "signals",
          {200: GroupPageOut}, query=GroupQuery,
          description="The same filters as `GET /signals`; one entry per (rule, host) with "
                      "the count, first and last event time, highest severity and status "
                      "counts of its matching signals, and the newest one's id. Page with "
                      "`cursor` = the previous `next_cursor`."),
    Route("GET", "/signals/{signal_id}", signals.get_signal, Access.READ,
          "One signal with its history", "signals",
          {200: SignalDetail, 404: "No signal has this id."}, path_params=SIGNAL_ID),
    Route("GET", "/signal", signals.get_signal_by_query, Access.READ,
          "One signal with its history, named in the query", "signals",
          {200: SignalDetail, 404: "No signal has this id."}, query=SignalIdQuery,
          description="The same as `GET /signals/{signal_id}`, for any id: browsers resolve "
                      "the path segments `.` and `..` away (`%2E%2E` too), and "
                      "`/signals/volume` is another route."),
    Route("PATCH", "/signals/{signal_id}/status", signals.update_status, Access.WRITE,
          "Triage one signal", "signals",
          {200: StatusChanged, 404: "No signal has this id."}, path_params=SIGNAL_ID,
          body=Body(StatusUpdate), max_body=STATUS_BODY_LIMIT),
    Route("POST", "/signals/status", signals.bulk_update_status, Access.WRITE,
          "Triage many signals: by id, or a whole group or filter", "signals",
          {200: BulkStatusResult}, body=Body(BulkStatusUpdate),
          max_body=BULK_STATUS_BODY_LIMIT,
          description="`signal_ids` (up to 1,000) change in one transaction. A `group` "
                      "(rule and host) and/or a `filter` (the filters of `GET /signals`, "
                      "but matching any status and silenced signals unless given) change "
                      "every matching signal stored before the call, up to 100,000, in small "
                      "transactions so ingest keeps flowing; `updated` is how many changed "
                      "and `more` says whether matching signals are left."),
    Route("GET", "/signals/volume", signals.signal_volume, Access.READ,
          "Signals per time bucket, by severity", "signals", {200: VolumeOut},
          query=VolumeQuery,
          description="`bucket` is a duration from 1m to 3660d (e.g. `15m`, `1h`) or `auto` "
                      "(about 120 buckets); at most 2,000 buckets. Without it: 1h, widened "
                      "as needed. Without `since`: from the first signal, leaving out Go's "
                      "zero time (0001-01-01)."),
    Route("GET", "/stats", signals.stats, Access.READ,
          "Totals and breakdowns", "signals", {200: StatsOut}),
    Route("GET", "/agents", agents.list_agents, Access.READ,
          "Agents and their latest heartbeat", "agents", {200: AgentList}, query=AgentQuery),
    Route("GET", "/agents/problems", agents.connection_problems, Access.READ,
          "Agent connection problems by client address", "agents",
          {200: ConnectionProblemsOut}, query=ProblemsQuery,
          description="What keeps agents from reaching this service, per client address and "
                      "kind, over the last `hours` hours (1-168, default 24): failed TLS "
                      "handshakes (`tls_failure`), wrong or revoked agent keys (`wrong_key`), "
                      "a key bound to one host used for another (`key_misuse`), and signals "
                      "stored with their oversized context shortened (`context_shortened`). "
                      "Counted per hour by every process; the most recently seen first. "
                      "Behind a trusted proxy (SANTAMON_TRUSTED_PROXIES) the address is the "
                      "client's it names in `X-Forwarded-For`."),
    Route("GET", "/agents/{agent_id}", agents.agent_timeline, Access.READ,
          "One agent's timeline", "agents",
          {200: AgentTimeline, 404: "No agent has this id."}, query=TimelineQuery,
          path_params={"agent_id": "The agent's id as it sends it (usually the hostname); "
                                   "an agent called `problems`, or one with a `/`, is reached "
                                   "through `GET /agent`."},
          description="Online and offline intervals, availability per UTC day, agent and "
                      "macOS versions and reboots, worked out from the heartbeats the "
                      "agent's history keeps (by default the whole retention)."),
    Route("GET", "/agent", agents.agent_timeline_by_query, Access.READ,
          "One agent's timeline, named in the query", "agents",
          {200: AgentTimeline, 404: "No agent has this id."}, query=AgentTimelineQuery,
          description="The same as `GET /agents/{agent_id}`, for any id: one with a `/`, "
                      "`.` or `..`, or an agent called `problems`."),
    # -- silences ----------------------------------------------------------------------------
    Route("GET", "/silences", silences.list_silences, Access.READ,
          "Silences, newest first", "silences", {200: SilenceList}, query=SilenceQuery),
    Route("POST", "/silences", silences.create_silence, Access.WRITE,
          "Silence signals for a while", "silences", {201: SilenceCreated},
          body=Body(SilenceIn), max_body=SILENCE_BODY_LIMIT,
          description="New signals that match an active silence are still stored, but "
                      "marked with it: left out of the default queue and the open counts, "
                      "and not forwarded (unless SANTAMON_FORWARD_SILENCED). A silence on "
                      "a host that covers its `AGENT-STALE` alert is a maintenance window: "
                      "no stale alert for that host while it lasts."),
    Route("GET", "/silences/preview", silences.preview_silence, Access.READ,
          "How many open signals a silence would resolve", "silences",
          {200: SilencePreview}, query=SilenceMatchersIn),
    Route("DELETE", "/silences/{silence_id}", silences.expire_silence, Access.WRITE,
          "Expire a silence now (it is kept for the record)", "silences",
          {200: SilenceOut, 404: "No silence has this id."}, path_params=SILENCE_ID),
    # -- agent keys --------------------------------------------------------------------------
    Route("GET", "/agent-keys", keys.list_agent_keys, Access.READ,
          "Agent keys bound to a host, newest first", "agent keys", {200: AgentKeyList},
          query=AgentKeyQuery,
          description="Every key with its host, state, who made it and when, and when and "
                      "from where it was last used. Never the keys themselves."),
    Route("POST", "/agent-keys", keys.create_agent_keys, Access.KEYS,
          "Create a key for each host", "agent keys", {200: AgentKeysIssued},
          description="Each new key may send signals and heartbeats for its host only. The "
                      "keys are in this answer and nowhere else: only their hashes are "
                      "kept. Deliver each to its Mac (MDM or install script) as the agent's "
                      "`X-API-Key`.",
          body=Body(AgentKeysCreate), max_body=AGENT_KEYS_BODY_LIMIT),
    Route("POST", "/agent-keys/{key_id}/rotate", keys.rotate_agent_key, Access.KEYS,
          "Replace a key, the old one valid for a grace period", "agent keys",
          {200: AgentKeyRotated, 404: "No valid key has this id."}, path_params=KEY_ID,
          body=Body(AgentKeyRotate), max_body=ROTATE_BODY_LIMIT,
          description="A new key for the same host, shown this once; the old key stays "
                      "valid for `grace` (default 24h) so the agent can be given the new one."),
    Route("DELETE", "/agent-keys/{key_id}", keys.revoke_agent_key, Access.KEYS,
          "Revoke a key", "agent keys", {200: AgentKeyOut, 404: "No key has this id."},
          path_params=KEY_ID,
          description="Refused at once by the process that takes this request and within "
                      "seconds by any other sharing the database. The key stays listed, "
                      "revoked, for the record."),
    # -- the console -------------------------------------------------------------------------
    Route("GET", "/ui", console.console_page, Access.PUBLIC,
          "The console", "console", {200: "An HTML page."}, content_type="text/html"),
    Route("POST", "/session", console.create_session, Access.PUBLIC,
          "Sign the console in with a person's key or the admin key", "console",
          {200: SessionCreated, 401: "Not a person's key nor the admin key.",
           429: "Too many failed sign-ins from this address; see `Retry-After`."},
          body=Body(SessionLogin), max_body=SESSION_BODY_LIMIT),
    Route("GET", "/session", console.get_session, Access.PUBLIC,
          "The console session: its CSRF token and who is signed in", "console",
          {200: SessionInfo, 401: "Not signed in."}),
    Route("DELETE", "/session", console.delete_session, Access.PUBLIC,
          "Sign the console out", "console",
          {200: SignedOut, 403: "The session cookie came without its X-CSRF-Token."}),
    # -- operations --------------------------------------------------------------------------
    Route("GET", "/health", ops.health, Access.PUBLIC,
          "Whether the database takes writes", "operations",
          {200: HealthOut, 503: "The database cannot be written."}),
    Route("GET", "/jobs", ops.jobs, Access.READ,
          "Background jobs and forwarding", "operations", {200: JobsOut},
          description="Each job's last run as the database recorded it, whichever process "
                      "ran it (`instance`): with several workers or instances on one "
                      "database, each job runs in one process at a time."),
    Route("GET", "/metrics", ops.prometheus_metrics, Access.READ,
          "Prometheus metrics", "operations",
          {200: "Metrics in the Prometheus text format."}, content_type="text/plain"),
    Route("GET", "/", ops.index, Access.PUBLIC,
          "Service name, version and endpoints", "operations", {200: IndexOut}),
    Route("GET", "/openapi.json", ops.openapi_json, Access.PUBLIC,
          "This document", "operations", {200: "The OpenAPI 3.1 document."}),
    Route("GET", "/docs", ops.swagger_ui, Access.PUBLIC,
          "API documentation (Swagger UI)", "operations", {200: "An HTML page."},
          content_type="text/html"),
    Route("GET", "/redoc", ops.redoc, Access.PUBLIC,
          "API documentation (ReDoc)", "operations", {200: "An HTML page."},
          content_type="text/html"),
]

DESCRIPTION = """\
The server Santamon agents ship detections (signals) and heartbeats to, and analysts triage.

**Authentication.** Agent keys go in `X-API-Key` and may only call `POST /ingest` and
`POST /agents/heartbeat`; a key bound to a host (`/agent-keys`) only for that host. People's
keys and the admin key go in `Authorization: Bearer <key>` or `X-API-Key`: a viewer may read,
an analyst may also triage, silence and manage agent keys, the admin key may do everything. Each
operation names the access it needs (`public`, `agent`, `read`, `write`, `keys`). Use
"Authorize" with a key to try requests from this page.

Every error is JSON: `{"error": "...", ...}`; 422 adds `details`. Timestamps are RFC 3339;
stored ones are UTC with nanoseconds (`2026-11-03T22:22:07.120934551Z`).
"""


def setup_routes(app: web.Application) -> None:
    access: dict[web.AbstractRoute, Access] = {}
    body_limits: dict[web.AbstractRoute, int] = {}
    for route in ROUTES:
        # `Expect: 100-continue` is answered only once the key allows the route.
        registered = app.router.add_route(route.method, route.path, route.handler,
                                          expect_handler=expect_continue)
        access[registered] = route.access
        if route.max_body:
            body_limits[registered] = route.max_body
    app[ROUTE_ACCESS] = access
    app[ROUTE_BODY_LIMITS] = body_limits
    # The console's own files: public, never a symlink out of the folder, no listings.
    if static.STATIC_DIR.is_dir():  # an install without the console still serves the API
        app.router.add_static("/static", static.STATIC_DIR, follow_symlinks=False,
                              show_index=False, expect_handler=expect_continue)


def openapi_document() -> dict:
    return build_openapi([route.operation() for route in ROUTES], title="Santamon Backend",
                         version=__version__, description=DESCRIPTION)
