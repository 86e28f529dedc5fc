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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.agents import SilentAgent
from ..domain.heartbeats import Heartbeat, HistoryRule, KeptBeat
from ..domain.signals import NewSignal

__all__ = [
    "AgentFilter", "AgentHistory", "AlertBuilder", "ConsoleSession", "ForwardBatch",
    "Heartbeat", "HistoryRule", "InvalidCursor", "KeptBeat", "NewSignal", "SignalFilter",
    "SignalPage", "StatusResult", "Store", "StoreUnavailable",
]


class StoreUnavailable(Exception):
    """The database cannot serve this request right now; the caller may retry later."""


class InvalidCursor(ValueError):
    """A cursor this store did not hand out (or from an older version of it)."""


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
class AgentHistory:
    agent: dict[str, Any]  # as `list_agents` shows it
    beats: list[KeptBeat]  # oldest first


@dataclass(slots=True)
class SignalPage:
    signals: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(slots=True)
class StatusResult:
    updated: int
    not_found: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ForwardBatch:
    """Signals not yet shipped, oldest first, with where the forwarder stands.

    `positions[i]` is the position to record once `signals[i]` and everything before it are
    dealt with; `start` is where the scan began and `end` how far it reached (every signal up
    to `end` that is not listed was already shipped).
    """

    signals: list[dict[str, Any]]
    positions: list[int]
    start: int
    end: int
    more: bool  # the scan stopped at its limit: there may be more after `end`


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console: only a hash of its token is ever stored."""

    token_hash: bytes
    actor: str  # who signed in, for the history of what they do
    created_at: str
    expires_at: str


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

    async def record_heartbeats(self, beats: list[Heartbeat], history: HistoryRule) -> None:
        """Apply heartbeats, in one transaction; returns once it is committed.

        A heartbeat applies only when it was received after the agent's latest one stored
        (several servers may share the database, and none may move an agent back). It then
        becomes the agent's latest and makes it active; an unresolved stale alert of the agent
        gets a reconnection note (`domain.agents.reconnection_note`); and the agent's history
        (the `heartbeats` table) keeps it when `history.reasons` gives a reason, stored with
        it (`domain.heartbeats.encode_reasons`), and on a RETURN keeps the agent's previous
        latest heartbeat too, as LAST. Heartbeats of one agent apply in order of receipt.
        """

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

    async def agent_history(self, agent_id: str, since: str, until: str) -> AgentHistory | None:
        """The agent and the heartbeats its history kept that were received in
        [since, until), with the last one kept before `since` and the first at or after
        `until` (how the window begins and ends); None for an agent never heard from."""

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
        """Delete up to `limit` heartbeats of the history received before `cutoff`, keeping
        each agent's latest; returns how many went."""

    async def prune_resolved_signals(self, cutoff: str, limit: int) -> int:
        """Delete up to `limit` resolved signals older than `cutoff` with their history and
        shipped rows; returns how many went."""

    async def compact(self) -> None:
        """Give space back to the engine and refresh the planner's statistics."""

    async def unshipped(self, limit: int) -> ForwardBatch: ...

    async def mark_shipped(self, signal_ids: list[str], position: int) -> None:
        """Record these signals as shipped and everything up to `position` (one of a batch's
        `start` or `positions`) as dealt with; a position never moves back."""

    async def forward_backlog(self, severities: tuple[str, ...]) -> int: ...

    # -- console sessions -------------------------------------------------------------------

    async def create_session(self, session: ConsoleSession, keep: int) -> None:
        """Store a session, keeping at most `keep`: the ones that expire first go."""

    async def get_session(self, token_hash: bytes, now: str) -> ConsoleSession | None:
        """The session unless it does not exist or has expired by `now`."""

    async def delete_session(self, token_hash: bytes) -> None: ...

    async def prune_sessions(self, now: str) -> int:
        """Delete expired sessions; returns how many went."""
