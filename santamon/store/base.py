"""The storage interface the HTTP layer and the jobs use.

It is deliberately narrow so that a PostgreSQL store can sit beside the SQLite one. Rows come
back as plain dicts ready for JSON, with stored JSON documents (context) as `orjson.Fragment`
so they are never decoded and re-encoded on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..models import AgentQuery, HeartbeatIn, SignalQuery


class StoreUnavailable(Exception):
    """The database cannot take writes right now (disk full, I/O error, closed)."""


@dataclass(frozen=True, slots=True)
class NewSignal:
    """A validated signal in the form it is stored."""

    signal_id: str
    ts: str
    host_id: str
    rule_id: str
    severity: str
    title: str
    tags_json: bytes
    context_json: bytes
    status: str
    rule_description: str | None


@dataclass(frozen=True, slots=True)
class AgentReturn:
    """What a heartbeat changed: set when the agent had been marked stale."""

    agent_id: str
    stale_since: str
    silent_seconds: float


@dataclass(slots=True)
class ForwardBatch:
    """Signals not yet shipped, oldest first, and how far the scan reached."""

    signals: list[dict[str, Any]]
    positions: list[int]  # where each signal stands in the scan
    end: int  # how far the scan reached; pass to mark_shipped when the batch is dealt with
    more: bool  # the scan stopped at its limit: there may be more after `end`


@dataclass(slots=True)
class SignalPage:
    signals: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(slots=True)
class StatusResult:
    updated: int
    not_found: list[str] = field(default_factory=list)


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        """Store new signals; per item, True when stored and False when its id existed.

        Returns only after the signals are durably committed. The first write of an id wins.
        """

    async def record_heartbeat(self, heartbeat: HeartbeatIn) -> AgentReturn | None: ...

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        """Change the status of these signals in one transaction, recording history."""

    async def list_signals(self, query: SignalQuery) -> SignalPage: ...

    async def get_signal(self, signal_id: str) -> dict[str, Any] | None: ...

    async def list_agents(self, query: AgentQuery) -> list[dict[str, Any]]: ...

    async def stats(self) -> dict[str, Any]: ...

    async def signal_volume(self, since: str, until: str,
                            bucket_seconds: int) -> dict[int, dict[str, int]]:
        """Signals with `since <= ts < until` counted per severity and bucket of event time.

        Buckets are aligned to multiples of `bucket_seconds` since the epoch and keyed by their
        start in epoch seconds; empty buckets are absent.
        """

    async def first_signal_ts(self, after: str | None = None) -> str | None:
        """The earliest event time stored (later than `after`), or None when there is none."""

    async def check_writable(self) -> None:
        """Raise StoreUnavailable unless a write can be committed now."""

    # -- maintenance (santamon/jobs) --------------------------------------------------------

    async def mark_stale_agents(self, cutoff: str, threshold_seconds: float) -> list[str]:
        """Mark active agents last seen before `cutoff` stale, raising one alert each."""

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` heartbeats received before `cutoff`, keeping each agent's
        latest; returns how many went."""

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` resolved signals older than `cutoff` with their history and
        shipped rows; returns how many went."""

    async def compact(self) -> None:
        """Checkpoint the write-ahead log and refresh the planner's statistics."""

    async def unshipped(self, limit: int, after: int | None = None) -> ForwardBatch:
        """Up to `limit` rows' worth of signals not yet shipped, oldest first, from the
        forwarding position or from just after `after` (a scan that goes on past a signal
        that could not be delivered)."""

    async def mark_shipped(self, signal_ids: list[str], position: int) -> None:
        """Record these signals as shipped and everything up to `position` as dealt with."""

    async def forward_backlog(self, severities: list[str]) -> int: ...
