"""Request and query models: the one place that says what the API accepts.

Ingest models follow what the real agent sends (agent-wire.md): unknown fields are ignored,
`tags` may be null, `rule_description` and `uptime_seconds` may be missing, and severity and
status are matched case-insensitively, because a 4xx makes the agent retry forever. For the
same reason free text has no length limit here: what is too long is stored cut, with a marker
(views/ingest.py); only ids are refused when they are too long.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
)

from .. import timeutil
from ..config import parse_duration
from ..domain.keys import MAX_ROTATION_GRACE_SECONDS
from ..domain.problems import Kind
from ..domain.shortening import cut_text
from ..domain.signals import Severity, Status

MAX_CONTEXT_BYTES = 100_000
MAX_BATCH = 1000
# Free text longer than this is stored cut, with a marker saying how much went.
MAX_TITLE_CHARS = 512
MAX_DESCRIPTION_CHARS = 2000
MAX_TAG_CHARS = 64
MAX_TAGS = 50
MAX_VERSION_CHARS = 128


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _status_or_open(value: Any) -> Any:
    return "open" if value is None else _lower(value)


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


# Ids travel into forwarded requests' headers and into logs, where CR, LF or NUL break or
# forge them; the agent's own ids are 32 hex characters and hostnames.
Id = Annotated[str, AfterValidator(_no_control_characters)]

Timestamp = Annotated[str, AfterValidator(timeutil.normalize)]
"""An RFC 3339 timestamp (any offset, 0-9 fraction digits), stored in UTC form."""


def _no_nul(value: str) -> str:
    """NUL as U+FFFD: PostgreSQL cannot store it in text, and every engine stores the same.
    (Inside `context` it stays: there it is a JSON escape, which every engine stores.)"""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


FreeText = Annotated[str, AfterValidator(_no_nul)]


def _version(value: str) -> str:
    return cut_text(_no_nul(value), MAX_VERSION_CHARS)


VersionText = Annotated[str, AfterValidator(_version)]


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

    signal_id: Id = Field(min_length=1, max_length=256)
    ts: Timestamp
    host_id: Id = Field(min_length=1, max_length=255)
    rule_id: Id = Field(min_length=1, max_length=128)
    rule_description: FreeText | None = Field(
        None, description=f"Stored cut to {MAX_DESCRIPTION_CHARS} characters, with a marker.")
    status: Annotated[Status, BeforeValidator(_status_or_open)] = Field(
        "open", description="Ignored: a new signal is always stored `open`; triage is the "
                            "analyst's.")
    severity: Annotated[Severity, BeforeValidator(_lower)]
    title: FreeText = Field(
        min_length=1, description=f"Stored cut to {MAX_TITLE_CHARS} characters, with a marker.")
    tags: list[FreeText] | None = Field(None, description=(
        f"Stored cut to {MAX_TAGS} tags of {MAX_TAG_CHARS} characters, with markers."))
    context: dict[str, Any] = Field(description=(
        f"Over {MAX_CONTEXT_BYTES:,} bytes as JSON: stored shortened, the longest strings cut "
        "first, each with a marker saying how many bytes went; see `shortened`."))


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [HEARTBEAT_EXAMPLE]})

    agent_id: Id = Field(min_length=1, max_length=255)
    timestamp: Timestamp
    version: VersionText | None = None
    os_version: VersionText | None = None
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


class ProblemsQuery(BaseModel):
    """GET /agents/problems: the last `hours` hours."""

    model_config = ConfigDict(extra="ignore")

    hours: int = Field(24, ge=1, le=168)
    limit: int = Field(200, ge=1, le=1000)


class SignalIdQuery(BaseModel):
    """GET /signal: a signal named in the query, for ids that a URL path cannot carry."""

    model_config = ConfigDict(extra="ignore")

    signal_id: str = Field(min_length=1, max_length=256)


class SessionLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024)


HostId = Annotated[Id, Field(min_length=1, max_length=255)]


def _grace(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds > MAX_ROTATION_GRACE_SECONDS:
        raise ValueError("a grace period is at most 90d")
    return seconds


class AgentKeysCreate(BaseModel):
    """One new key for each host; each key may then send only for its host."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"host_ids": ["mbp-alice"]}]})

    host_ids: list[HostId] = Field(min_length=1, max_length=MAX_BATCH)


class AgentKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace: Annotated[float, BeforeValidator(_grace)] = Field(
        86400.0, description="How long the old key stays valid beside the new one, so the "
                             "agent can be given the new key: a duration up to 90d (`24h`, "
                             "`7d`), or seconds; 0 ends it now. Default 24h.",
        json_schema_extra={"type": ["string", "number"]})


class AgentKeyQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    host_id: str | None = Field(None, min_length=1, max_length=255)
    limit: int = Field(500, ge=1, le=10_000)


class VolumeQuery(BaseModel):
    """GET /signals/volume: a window of event time and a bucket width (or `auto`)."""

    model_config = ConfigDict(extra="ignore")

    since: Timestamp | None = None
    until: Timestamp | None = None
    bucket: str | None = Field(None, max_length=16, description=(
        "A duration from 1m to 3660d, or `auto` (about 120 buckets). Without it: 1h, widened "
        "as needed to draw the window in at most 2,000 buckets."))


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
    shortened: list[str] = Field(description=(
        "What the server cut to store the signal rather than refuse it (`context`, `title`, "
        "`rule_description`, `tags`); empty for a signal stored as sent."))
    original_context_bytes: int | None = Field(description=(
        "The context's size as received (compact JSON), when it was shortened."))


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
    auth: str | None = Field(description="How the agent's latest heartbeat authenticated: "
                                          "`bound` (a key of its own), `shared` "
                                          "(SANTAMON_API_KEY) or `admin`; null before any "
                                          "was recorded.")


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


class ConnectionProblemOut(BaseModel):
    client: str = Field(description="The client's address, as this server saw it.")
    kind: Kind
    count: int
    last_seen: str
    detail: str = Field(description="What the latest of them was about.")


class ConnectionProblemsOut(BaseModel):
    """Agent connection problems per client address and kind, the most recent first."""

    since: str
    count: int
    problems: list[ConnectionProblemOut]


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
    actor: str = Field(description="Who signed in, as the history records them.")
    role: Literal["admin", "analyst", "viewer"]


class SessionInfo(BaseModel):
    """The current session: its CSRF token and who is signed in."""

    csrf_token: str
    actor: str
    role: Literal["admin", "analyst", "viewer"]


class AgentKeyOut(BaseModel):
    """An agent key, never the key itself."""

    key_id: str
    host_id: str = Field(description="The one host this key may send signals and heartbeats "
                                     "for.")
    state: Literal["active", "expiring", "expired", "revoked"] = Field(
        description="`expiring`: rotated, valid until `expires_at`.")
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None
    replaces: str | None = Field(description="The key this one rotated.")
    last_used_at: str | None = Field(description="Recorded within about 30 s of the use.")
    last_used_from: str | None


class AgentKeyList(BaseModel):
    """Agent keys, newest first."""

    count: int
    keys: list[AgentKeyOut]


class AgentKeyIssued(AgentKeyOut):
    """A new agent key. `key` is shown this once: only its hash is kept."""

    key: str


class AgentKeysIssued(BaseModel):
    """New agent keys, one per host. Each `key` is shown this once: only its hash is kept."""

    keys: list[AgentKeyIssued]


class AgentKeyRotated(AgentKeyIssued):
    """The new key (shown this once), and until when the key it replaces stays valid."""

    replaced_valid_until: str


class SignedOut(BaseModel):
    """The session is gone (or there was none)."""

    status: Literal["signed out"]
