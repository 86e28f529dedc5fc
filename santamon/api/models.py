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
    model_validator,
)

from .. import timeutil
from ..config import parse_duration
from ..domain.keys import MAX_ROTATION_GRACE_SECONDS
from ..domain.problems import Kind
from ..domain.shortening import cut_text
from ..domain.signals import Severity, Status
from ..domain.silences import MAX_SILENCE_SECONDS

MAX_CONTEXT_BYTES = 100_000
MAX_BATCH = 1000
# Triage by a group or a filter changes at most this many signals per call (in chunks).
MAX_FILTER_TRIAGE = 100_000
MAX_GROUPS_PER_PAGE = 500
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


SilencedChoice = Annotated[Literal["false", "true", "all"], BeforeValidator(_lower)]
StatusChoice = Annotated[Literal["open", "acknowledged", "resolved", "all"],
                         BeforeValidator(_lower)]


class SignalFilterFields(BaseModel):
    """What GET /signals, GET /signals/groups and triage by filter select on."""

    model_config = ConfigDict(extra="ignore")

    severity: Annotated[list[Severity] | None, BeforeValidator(_comma_list)] = None
    status: StatusChoice = "open"
    host_id: str | None = Field(None, min_length=1, max_length=255)
    rule_id: str | None = Field(None, min_length=1, max_length=128)
    search: str | None = Field(None, max_length=256)
    since: Timestamp | None = None
    until: Timestamp | None = None
    silenced: SilencedChoice = Field(
        "false", description="`false`: leave out signals an active silence matched when they "
                             "arrived; `true`: only those; `all`: both.")


class SignalQuery(SignalFilterFields):
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=512,
                               description="`next_cursor` of the previous page.")


class GroupQuery(SignalFilterFields):
    limit: int = Field(50, ge=1, le=MAX_GROUPS_PER_PAGE)
    cursor: str | None = Field(None, max_length=1024,
                               description="`next_cursor` of the previous page of groups.")


class TriageFilter(SignalFilterFields):
    """The signals to triage. Unlike GET /signals, nothing is left out unless asked: any
    status, silenced ones too."""

    model_config = ConfigDict(extra="forbid")

    status: StatusChoice = "all"
    silenced: SilencedChoice = "all"


class GroupRef(BaseModel):
    """A group of repeats: the signals of one rule on one host."""

    model_config = ConfigDict(extra="forbid")

    rule_id: str = Field(min_length=1, max_length=128)
    host_id: str = Field(min_length=1, max_length=255)


class BulkStatusUpdate(StatusUpdate):
    """Either `signal_ids`, or a `group` and/or a `filter` (both must hold)."""

    signal_ids: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        None, min_length=1, max_length=MAX_BATCH)
    group: GroupRef | None = None
    filter: TriageFilter | None = None

    @model_validator(mode="after")
    def _ids_or_a_selection(self) -> BulkStatusUpdate:
        if (self.signal_ids is None) == (self.group is None and self.filter is None):
            raise ValueError("give either signal_ids, or a group and/or a filter")
        return self


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


class AgentTimelineQuery(TimelineQuery):
    """GET /agent: the timeline of an agent named in the query, for ids a path cannot carry."""

    agent_id: str = Field(min_length=1, max_length=255)


class SilenceMatchersIn(BaseModel):
    """What a silence matches; every given matcher must hold."""

    model_config = ConfigDict(extra="ignore")

    rule_id: str | None = Field(None, min_length=1, max_length=128)
    host_id: str | None = Field(None, min_length=1, max_length=255)
    severity: Annotated[Severity | None, BeforeValidator(_lower)] = None
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS, description=(
        "Exact, or a glob where `*` stands for any run of characters (`curl * | sh`); "
        "case-sensitive. Matched against the title as stored (a longer one is stored cut)."))

    @model_validator(mode="after")
    def _at_least_one(self) -> SilenceMatchersIn:
        if not (self.rule_id or self.host_id or self.severity or self.title):
            raise ValueError("a silence needs at least one matcher: rule_id, host_id, "
                             "severity or title")
        return self


def _silence_duration(value: str | None) -> str | None:
    if value is not None and not 0 < parse_duration(value) <= MAX_SILENCE_SECONDS:
        raise ValueError("a silence lasts more than 0 s and at most 90 days")
    return value


class SilenceIn(SilenceMatchersIn):
    """A new silence: its matchers, why, and until when (`duration` or `ends_at`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "rule_id": "SM-008", "host_id": "build-mac-07", "title": "curl * | sh",
        "comment": "CI build script, ticket OPS-1234", "duration": "7d",
        "resolve_matching": True}]})

    comment: Annotated[str, AfterValidator(str.strip)] = Field(min_length=1, max_length=2000)
    duration: Annotated[str | None, AfterValidator(_silence_duration)] = Field(
        None, max_length=32, description="How long from now: `3600`, `90m`, `24h`, `7d` "
                                         "(at most 90 days).")
    ends_at: Timestamp | None = Field(None, description="When it ends, at most 90 days ahead.")
    resolve_matching: bool = Field(False, description="Also resolve the open signals it "
                                                      "matches now, in the same transaction.")

    @model_validator(mode="after")
    def _one_end_and_a_reason(self) -> SilenceIn:
        if (self.duration is None) == (self.ends_at is None):
            raise ValueError("give either duration or ends_at")
        if not self.comment:
            raise ValueError("a silence needs a comment: why, and who asked")
        return self


class SilenceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: Annotated[Literal["active", "expired", "all"], BeforeValidator(_lower)] = "all"
    limit: int = Field(200, ge=1, le=1000)


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
    silence_id: int | None = Field(description="The silence it matched when it arrived: "
                                               "kept out of the default queue, not forwarded.")
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


class SilenceOut(BaseModel):
    """A silence, active or expired; `signals` counts the signals it silenced."""

    id: int
    rule_id: str | None
    host_id: str | None
    severity: str | None
    title: str | None
    comment: str
    created_by: str
    created_at: str
    ends_at: str
    expired_at: str | None
    expired_by: str | None
    state: Literal["active", "expired"]
    signals: int


class SignalDetail(SignalOut):
    """A stored signal with its triage history, when it was forwarded, and its silence."""

    history: list[HistoryEntry]
    shipped_at: str | None
    silence: SilenceOut | None


class SilenceList(BaseModel):
    """Silences, newest first."""

    count: int
    silences: list[SilenceOut]


class SilenceCreated(BaseModel):
    """The silence, and how many open signals it resolved."""

    silence: SilenceOut
    resolved: int


class SilencePreview(BaseModel):
    """How many open signals these matchers match now."""

    open_matching: int


class GroupOut(BaseModel):
    rule_id: str
    host_id: str
    count: int
    first_ts: str
    last_ts: str
    severity: str | None = Field(description="The highest severity among them.")
    by_status: dict[str, int]
    silenced: int
    sample_signal_id: str | None = Field(description="The newest of them.")


class GroupPageOut(BaseModel):
    """Repeats grouped by (rule, host), newest last-seen first."""

    count: int
    groups: list[GroupOut]
    next_cursor: str | None


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
    """By ids: how many exist (`updated`) and the ids that do not. By a group or filter: how
    many changed, and whether more matching signals are left past the cap (`more`)."""

    updated: int
    not_found: list[str]
    status: Status
    more: bool = False


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
    maintenance_until: str | None = Field(description="The end of a maintenance window (a "
                                                      "silence on this host that covers its "
                                                      "stale alert), if one is active.")
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
    client: str = Field(description="The client's address, as this server saw it (behind a "
                                    "trusted proxy, as the proxy named it).")
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
    open_by_severity: dict[str, int] = Field(description="Open signals by severity, silenced "
                                                          "ones left out.")
    silenced_open: int
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
    instance: str | None = Field(
        description="The process that ran it last (SANTAMON_INSTANCE_NAME, or host name and "
                    "process id): with several processes on one database, one runs each job.")
    consecutive_failures: int
    runs: int
    failures: int
    next_run: str | None = Field(description="When this process tries the job next.")


class ForwardingOut(BaseModel):
    sinks: list[str]
    backlog: int | None
    min_severity: str | None = None
    consecutive_failures: int | None = None
    retry_in_seconds: float | None = Field(
        None, description="This process's backoff; null when another process forwards.")


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
    last_used_from: str | None = Field(description="The client's address (behind a trusted "
                                                   "proxy, as the proxy named it).")


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
