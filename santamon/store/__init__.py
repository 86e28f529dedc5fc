"""Storage: the engine-neutral contract (base.py) and its engines; `create_store` picks one."""

from __future__ import annotations

from collections.abc import Callable

from .. import timeutil
from ..config import Settings
from .base import (
    AgentFilter,
    AgentHistory,
    AlertBuilder,
    ConsoleSession,
    ForwardBatch,
    Heartbeat,
    HistoryRule,
    InvalidCursor,
    KeptBeat,
    NewSignal,
    SignalFilter,
    SignalPage,
    StatusResult,
    Store,
    StoreUnavailable,
)
from .liveness import Liveness

__all__ = ["AgentFilter", "AgentHistory", "AlertBuilder", "ConsoleSession", "ForwardBatch",
           "Heartbeat", "HistoryRule", "InvalidCursor", "KeptBeat", "Liveness", "NewSignal",
           "SignalFilter", "SignalPage", "StatusResult", "Store", "StoreUnavailable",
           "create_store"]

CommitObserver = Callable[[int, float], None]  # (writes in one commit, seconds it took)


def create_store(settings: Settings, *, clock: Callable[[], int] = timeutil.now_ns,
                 on_commit: CommitObserver | None = None) -> Store:
    """The store the settings ask for, not yet opened."""
    from .sqlite import SQLiteStore

    return SQLiteStore(settings.db_path, clock=clock, on_commit=on_commit)
