"""Request and query models: the one place that says what the API accepts.

Ingest models follow what the real agent sends (agent-wire.md): unknown fields are ignored,
`tags` may be null, `rule_description` and `uptime_seconds` may be missing, and severity and
status are matched case-insensitively, because a 4xx makes the agent retry forever.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from . import timeutil

SEVERITIES = ("info", "low", "medium", "high", "critical")
STATUSES = ("open", "acknowledged", "resolved")
MAX_CONTEXT_BYTES = 100_000
MAX_BATCH = 1000

Severity = Literal["info", "low", "medium", "high", "critical"]
Status = Literal["open", "acknowledged", "resolved"]


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


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

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
    model_config = ConfigDict(extra="ignore")

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


class Cursor(BaseModel):
    """Where a page of signals ended: the last row's time and its row id (the tie-breaker)."""

    ts: str
    rowid: int

    def encode(self) -> str:
        raw = orjson.dumps([self.ts, self.rowid])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            ts, rowid = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            return cls(ts=timeutil.normalize(ts), rowid=int(rowid))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise ValueError("invalid cursor; pass next_cursor from a previous page") from None


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
    cursor: Annotated[Cursor | None, BeforeValidator(Cursor.decode)] = None


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
