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

    async def check_writable(self) -> None:
        """Raise StoreUnavailable unless a write can be committed now."""
