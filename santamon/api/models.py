"""Request and query models: the one place that says what the API accepts.

Ingest models follow what the real agent sends (agent-wire.md): unknown fields are ignored,
`tags` may be null, `rule_description` and `uptime_seconds` may be missing, and severity and
status are matched case-insensitively, because a 4xx makes the agent retry forever.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
)

from .. import timeutil
from ..domain.signals import Severity, Status

MAX_CONTEXT_BYTES = 100_000
MAX_BATCH = 1000


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _status_or_open(value: Any) -> Any:
    return "open" if value is None else _lower(value)


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


Timestamp = Annotated[str, AfterValidator(timeutil.normalize)]
"""An RFC 3339 timestamp (any offset, 0-9 fraction digits), stored in UTC form."""

Tag = Annotated[str, Field(max_length=64)]


# What the agent really sends (agent-wire.md), shown in /docs and used by the fuzz tests.
SIGNAL_EXAMPLE = {
    "signal_id": "6f1c2a9e0b7d4c3f8a1e2d3c4b5a6978",
    "ts": "2026-11-03T14:22:07.120934551-08:00",
    "host_id": "mbp-alice",
    "rule_id": "SM-002",
    "rule_description": "Any non-ssh process reading ~/.ssh key material.",
    "status": "open",
    "severity": "critical",
    "title": "SSH private keys read by non-ssh process",
    "tags": ["T1552.004", "credential-access"],
    "context": {"actor_path": "/usr/local/bin/python3.12", "kind": "file_access",
                "target_path": "/Users/alice/.ssh/id_ed25519",
                "execution.args": ["python3", "exfil.py"]},
}
HEARTBEAT_EXAMPLE = {"agent_id": "mbp-alice", "timestamp": "2026-11-03T14:22:30.004417-08:00",
                     "version": "v0.3.1", "os_version": "15.4.1", "uptime_seconds": 86400.5}


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [SIGNAL_EXAMPLE]})

    signal_id: str = Field(min_length=1, max_length=256)
    ts: Timestamp
    host_id: str = Field(min_length=1, max_length=255)
    rule_id: str = Field(min_length=1, max_length=128)
    rule_description: str | None = Field(None, max_length=2000)
    status: Annotated[Status, BeforeValidator(_status_or_open)] = "open"
    severity: Annotated[Severity, BeforeValidator(_lower)]
    title: str = Field(min_length=1, max_length=512)
    tags: list[Tag] | None = Field(None, max_length=50)
    context: dict[str, Any]

    def context_json(self) -> bytes:
        return orjson.dumps(self.context)


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [HEARTBEAT_EXAMPLE]})

    agent_id: str = Field(min_length=1, max_length=255)
    timestamp: Timestamp
    version: str | None = Field(None, max_length=128)
    os_version: str | None = Field(None, max_length=128)
    uptime_seconds: float | None = Field(None, ge=0)


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Annotated[Status, BeforeValidator(_lower)]
    note: str | None = Field(None, max_length=2000)


class BulkStatusUpdate(StatusUpdate):
    signal_ids: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=MAX_BATCH)


class SignalQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    severity: Annotated[list[Severity] | None, BeforeValidator(_comma_list)] = None
    status: Annotated[Literal["open", "acknowledged", "resolved", "all"],
                      BeforeValidator(_lower)] = "open"
    host_id: str | None = Field(None, min_length=1, max_length=255)
    rule_id: str | None = Field(None, min_length=1, max_length=128)
    search: str | None = Field(None, max_length=256)
    since: Timestamp | None = None
    until: Timestamp | None = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=512,
                               description="`next_cursor` of the previous page.")


class SignalIdQuery(BaseModel):
    """GET /signal: a signal named in the query, for ids that a URL path cannot carry."""

    model_config = ConfigDict(extra="ignore")

    signal_id: str = Field(min_length=1, max_length=256)


class SessionLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024)


class VolumeQuery(BaseModel):
    """GET /signals/volume: a window of event time and a bucket width (or `auto`)."""

    model_config = ConfigDict(extra="ignore")

    since: Timestamp | None = None
    until: Timestamp | None = None
    bucket: str = Field("1h", max_length=16)


class AgentQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: Timestamp | None = None
    status: Annotated[Literal["active", "stale", "all"], BeforeValidator(_lower)] = "all"
    limit: int = Field(200, ge=1, le=2000)


class TimelineQuery(BaseModel):
    """GET /agents/{agent_id}: a window of receipt time."""

    model_config = ConfigDict(extra="ignore")

    since: Timestamp | None = Field(
        None, description="Inclusive; by default the heartbeat retention before `until`.")
    until: Timestamp | None = Field(None, description="Exclusive; by default now.")


# -- Responses ------------------------------------------------------------------------------
# What the API answers with. The views build plain dicts (stored JSON is passed through as
# `orjson.Fragment`, never decoded), and these models describe them for /openapi.json; the
# schemathesis test checks real responses against that document.

class IngestItemResult(BaseModel):
    signal_id: str
    duplicate: bool = Field(description="True when a signal with this id was already stored.")


class IngestResult(BaseModel):
    """One signal received (stored now, or already stored)."""

    status: Literal["received"]
    signal_id: str
    duplicate: bool


class IngestBatchResult(BaseModel):
    """A batch received: all of it stored or already present, in one transaction."""

    status: Literal["received"]
    received: int
    stored: int
    duplicates: int
    results: list[IngestItemResult]


class IngestResponse(RootModel[IngestResult | IngestBatchResult]):
    """A single signal's result, or a batch's."""


class HeartbeatAck(BaseModel):
    """Heartbeat recorded."""

    status: Literal["ok"]
    agent_id: str


class SignalOut(BaseModel):
    """A stored signal; `ts` and `received_at` in UTC with nanoseconds."""

    signal_id: str
    ts: str
    host_id: str
    rule_id: str
    rule_description: str | None
    severity: str
    title: str
    tags: list[Any]
    context: dict[str, Any]
    status: str
    received_at: str | None


class HistoryEntry(BaseModel):
    from_status: str | None
    to_status: str
    changed_at: str
    note: str | None
    actor: str | None


class SignalDetail(SignalOut):
    """A stored signal with its triage history and when it was forwarded."""

    history: list[HistoryEntry]
    shipped_at: str | None


class SignalPageOut(BaseModel):
    """A page of signals, newest first; pass `next_cursor` back as `cursor` for the next."""

    count: int
    signals: list[SignalOut]
    next_cursor: str | None


class StatusChanged(BaseModel):
    """The signal's new status."""

    signal_id: str
    status: Status


class BulkStatusResult(BaseModel):
    """How many signals changed status, and the ids that do not exist."""

    updated: int
    not_found: list[str]
    status: Status


class AgentOut(BaseModel):
    agent_id: str
    timestamp: str | None
    version: str | None
    os_version: str | None
    uptime_seconds: float | None
    received_at: str | None
    first_seen: str | None
    last_seen: str | None
    status: str
    stale_since: str | None


class AgentList(BaseModel):
    """Every agent with its latest heartbeat, stale ones first."""

    count: int
    heartbeats: list[AgentOut]


class TimelineInterval(BaseModel):
    state: Literal["online", "offline"]
    start: str
    end: str
    seconds: float


class TimelineDay(BaseModel):
    """One UTC day of the window; `known_seconds` is the part after the agent was first
    heard from (and before now)."""

    date: str = Field(description="YYYY-MM-DD, UTC.")
    online_seconds: float
    known_seconds: float
    availability: float | None = Field(description="online / known, 0-1; null when unknown.")


class TimelineVersion(BaseModel):
    """A period of one agent and macOS version."""

    version: str | None
    os_version: str | None
    since: str = Field(description="The first heartbeat with it in the history kept.")
    until: str | None = Field(description="The first heartbeat with the next; null: current.")


class TimelineReboot(BaseModel):
    seen_at: str = Field(description="The first heartbeat after the reboot.")
    booted_at: str | None = Field(description="That heartbeat's time minus its uptime.")
    uptime_seconds: float | None


class AgentTimeline(BaseModel):
    """An agent's timeline, worked out from the heartbeats its history keeps: online from the
    first heartbeat after a gap (a silence longer than `gap_seconds`) to the last before the
    next; online after its latest heartbeat until it is silent for a gap or stale."""

    agent: AgentOut
    since: str
    until: str
    gap_seconds: float
    availability: float | None = Field(description="Online share of the known window, 0-1.")
    online_seconds: float
    offline_seconds: float
    intervals: list[TimelineInterval]
    days: list[TimelineDay]
    versions: list[TimelineVersion]
    reboots: list[TimelineReboot]
    heartbeats_kept: int = Field(description="History rows in the window.")


class AgentCounts(BaseModel):
    active: int
    stale: int
    total: int


class StatsOut(BaseModel):
    """Totals and breakdowns of stored signals, and agents by status."""

    total_signals: int
    last_24h: int
    by_severity: dict[str, int]
    by_status: dict[str, int]
    open_by_severity: dict[str, int]
    by_host: dict[str, int]
    top_rules: dict[str, int]
    agents: AgentCounts


class HealthOut(BaseModel):
    """The database took a committed write."""

    status: Literal["healthy", "unhealthy"]
    timestamp: str
    error: str | None = None
    detail: str | None = None


class IndexOut(BaseModel):
    """Name, version and the endpoints of this service."""

    name: str
    version: str
    endpoints: list[str]


class VolumeBucket(BaseModel):
    start: str
    critical: int
    high: int
    medium: int
    low: int
    info: int


class VolumeOut(BaseModel):
    """Signals per bucket of event time, by severity; empty buckets included."""

    bucket_seconds: int
    since: str
    until: str
    buckets: list[VolumeBucket]


class JobOut(BaseModel):
    id: str
    description: str
    interval_seconds: float
    enabled: bool
    last_run: str | None
    last_outcome: str | None
    last_message: str | None
    last_duration_seconds: float | None
    consecutive_failures: int
    runs: int
    failures: int
    next_run: str | None


class ForwardingOut(BaseModel):
    sinks: list[str]
    backlog: int | None
    min_severity: str | None = None
    consecutive_failures: int | None = None
    retry_in_seconds: float | None = None


class JobsOut(BaseModel):
    """What each background job last did, and the forwarder's state."""

    jobs: list[JobOut]
    forwarding: ForwardingOut


class SessionCreated(BaseModel):
    """Signed in: the session cookie is set; send `csrf_token` as X-CSRF-Token on writes."""

    csrf_token: str
    expires_in: int


class SessionInfo(BaseModel):
    """The current session's CSRF token."""

    csrf_token: str


class SignedOut(BaseModel):
    """The session is gone (or there was none)."""

    status: Literal["signed out"]
