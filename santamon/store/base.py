"""The storage contract: what the HTTP layer and the jobs may ask of any database engine.

The store speaks its own small types, never the HTTP layer's models. Timestamps cross it in
the stored UTC form (`timeutil.format_utc`), whose string order is time order. Rows come back
as plain dicts ready for JSON, with stored JSON documents (tags, context) as `orjson.Fragment`
so they are never decoded and re-encoded on the way out. Cursors and forwarding positions are
the store's own: callers pass them back, never build or take them apart.

Every failure of the database itself (disk full, I/O error, locked, closed, unreachable)
surfaces as `StoreUnavailable`, which the API answers with 503 and `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.agents import SilentAgent
from ..domain.signals import NewSignal

__all__ = [
    "AgentFilter", "AlertBuilder", "ConsoleSession", "ForwardBatch", "ForwardPosition",
    "Heartbeat", "InvalidCursor", "JobRecord", "JobRun", "NewSignal", "SchemaTooNew",
    "SignalFilter", "SignalPage", "StatusResult", "Store", "StoreUnavailable",
]


class StoreUnavailable(Exception):
    """The database cannot serve this request right now; the caller may retry later."""


class InvalidCursor(ValueError):
    """A cursor this store did not hand out (or from an older version of it)."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer server."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    agent_id: str
    timestamp: str  # the agent's clock, stored UTC form
    version: str | None = None
    os_version: str | None = None
    uptime_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SignalFilter:
    """Which signals a page holds; every given condition must hold. Newest first by `ts`."""

    status: str | None = "open"  # None: any status
    severities: tuple[str, ...] | None = None
    host_id: str | None = None
    rule_id: str | None = None
    search: str | None = None  # in the title or the rule id, case-insensitive
    since: str | None = None  # inclusive
    until: str | None = None  # exclusive
    limit: int = 100
    cursor: str | None = None  # `next_cursor` of the previous page


@dataclass(frozen=True, slots=True)
class AgentFilter:
    status: str | None = None  # "active", "stale", or None for both
    since: str | None = None  # last seen at or after
    limit: int = 200


@dataclass(slots=True)
class SignalPage:
    signals: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(slots=True)
class StatusResult:
    updated: int
    not_found: list[str] = field(default_factory=list)


# Where the forwarder stands: the store's own value, which callers only pass back (and may
# compare for equality), never build or order.
ForwardPosition = Hashable


@dataclass(slots=True)
class ForwardBatch:
    """Signals not yet shipped, oldest first, with where the forwarder stands.

    `positions[i]` is the position to record once `signals[i]` and everything before it are
    dealt with; `start` is where the scan began and `end` how far it reached (every signal up
    to `end` that is not listed was already shipped).
    """

    signals: list[dict[str, Any]]
    positions: list[ForwardPosition]
    start: ForwardPosition
    end: ForwardPosition
    more: bool  # the scan stopped at its limit: there may be more after `end`


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console: only a hash of its token is ever stored."""

    token_hash: bytes
    actor: str  # who signed in, for the history of what they do
    created_at: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a background job, as it finished."""

    job_id: str
    instance: str  # the process that ran it (config.instance_name)
    started_at: str
    outcome: str  # "ok", "failed" or "skipped"
    message: str | None
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job's last run, and its runs counted over every process that ran it."""

    last: JobRun
    runs: int
    failures: int
    consecutive_failures: int


# Builds the alert for an agent found silent, inside the transaction that marks it stale:
# (the agent's last heartbeat, the time it is marked) -> the signal to insert.
AlertBuilder = Callable[[SilentAgent, str], NewSignal]


class Store(Protocol):
    # -- lifetime ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or upgrade the schema and start serving. On failure, leaves nothing open."""

    async def close(self) -> None:
        """Commit what was accepted, then release every connection."""

    # -- ingest -----------------------------------------------------------------------------

    async def insert_signals(self, signals: list[NewSignal]) -> list[bool]:
        """Store new signals as `open`; per item, True when stored and False when its id
        existed (the first write of an id wins, in one call or across calls).

        All of them or none; returns only after they are durably committed.
        """

    async def record_heartbeat(self, heartbeat: Heartbeat) -> None:
        """Keep the heartbeat, make its agent active, and note a reconnection on the agent's
        unresolved stale alert (`domain.agents.reconnection_note`)."""

    # -- triage -----------------------------------------------------------------------------

    async def set_status(self, signal_ids: list[str], status: str, note: str | None,
                         actor: str) -> StatusResult:
        """Change the status of these signals in one transaction, recording history (a note
        on an unchanged status is recorded too)."""

    async def list_signals(self, query: SignalFilter) -> SignalPage:
        """Raises InvalidCursor for a cursor it did not hand out."""

    async def get_signal(self, signal_id: str) -> dict[str, Any] | None:
        """The signal with its `history` (oldest first) and `shipped_at`."""

    async def list_agents(self, query: AgentFilter) -> list[dict[str, Any]]:
        """Stale agents first, then the most recently seen."""

    async def stats(self) -> dict[str, Any]: ...

    async def signal_volume(self, since: str, until: str,
                            bucket_seconds: int) -> dict[int, dict[str, int]]:
        """Signals with `since <= ts < until` counted per severity and bucket of event time.

        Buckets are aligned to multiples of `bucket_seconds` since the epoch and keyed by their
        start in epoch seconds; empty buckets are absent.
        """

    async def first_signal_ts(self, not_before: str | None = None) -> str | None:
        """The earliest event time stored (at or after `not_before`), or None."""

    # -- operations -------------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raise StoreUnavailable unless a signal could be committed now."""

    async def size_bytes(self) -> int:
        """What the database takes on disk."""

    # -- maintenance (santamon/jobs) --------------------------------------------------------

    async def mark_stale_agents(self, cutoff: str, alert: AlertBuilder) -> list[str]:
        """Mark active agents last seen before `cutoff` stale, and insert the alert built for
        each in the same transaction; returns the agents marked."""

    async def prune_heartbeats(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` heartbeats received before `cutoff`, keeping each agent's
        latest; returns how many went."""

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` resolved signals older than `cutoff` with their history and
        shipped rows; returns how many went."""

    async def compact(self) -> None:
        """Give space back to the engine and refresh the planner's statistics."""

    async def unshipped(self, limit: int) -> ForwardBatch:
        """Up to `limit` signals after the recorded position that are not in `shipped`.

        A position only ever covers signals whose storing can no longer be followed by the
        commit of a signal before them: a signal committed after a later one (concurrent
        transactions commit in any order) still comes after the position, so recording a
        batch's positions never skips a signal, and never offers one twice.
        """

    async def mark_shipped(self, signal_ids: list[str], position: ForwardPosition) -> None:
        """Record these signals as shipped and everything up to `position` (one of a batch's
        `start` or `positions`) as dealt with; a position never moves back."""

    async def forward_backlog(self, severities: tuple[str, ...]) -> int:
        """Signals of these severities after the recorded position and not shipped."""

    # -- background jobs shared by several processes ---------------------------------------

    def job_lock(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Whether this process runs job `name` now: yields True while it holds the job's
        lock, False while another process sharing the database holds it.

        A process keeps a lock it took between runs, until the store closes or the process
        dies, so each job runs once per interval across all processes rather than once per
        process; another process's next try then takes it. A lock whose hold can no longer
        be proven (its connection broke) counts as lost, and is taken afresh if it is free.
        Raises StoreUnavailable when the database cannot tell.
        """

    async def record_job_run(self, run: JobRun) -> None:
        """Keep this run as the job's last, and count it, for every process to report."""

    async def job_records(self) -> dict[str, JobRecord]:
        """Each job's last recorded run, by job id."""

    # -- console sessions -------------------------------------------------------------------

    async def create_session(self, session: ConsoleSession, keep: int) -> None:
        """Store a session, keeping at most `keep`: the ones that expire first go."""

    async def get_session(self, token_hash: bytes, now: str) -> ConsoleSession | None:
        """The session unless it does not exist or has expired by `now`."""

    async def delete_session(self, token_hash: bytes) -> None: ...

    async def prune_sessions(self, now: str) -> int:
        """Delete expired sessions; returns how many went."""
