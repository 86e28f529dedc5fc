"""Storage: the engine-neutral contract (base.py) and its engines; `create_store` picks one."""

from __future__ import annotations

from collections.abc import Callable

from .. import timeutil
from ..config import Settings
from .base import (
    AgentFilter,
    AgentHistory,
    AgentKey,
    AlertBuilder,
    AnalystKey,
    ConnectionProblem,
    ConsoleSession,
    ForwardBatch,
    GroupPage,
    Heartbeat,
    HistoryRule,
    InvalidCursor,
    JobRecord,
    JobRun,
    KeptBeat,
    KeyUse,
    Matchers,
    NameTaken,
    NewAgentKey,
    NewAnalystKey,
    NewSignal,
    NewSilence,
    SignalFilter,
    SignalPage,
    Silence,
    StatusResult,
    Store,
    StoreUnavailable,
    SummaryBuilder,
)
from .liveness import Liveness

__all__ = ["AgentFilter", "AgentHistory", "AgentKey", "AlertBuilder", "AnalystKey",
           "ConnectionProblem", "ConsoleSession", "ForwardBatch", "GroupPage", "Heartbeat",
           "HistoryRule", "InvalidCursor", "JobRecord", "JobRun", "KeptBeat", "KeyUse", "Liveness",
           "Matchers", "NameTaken", "NewAgentKey", "NewAnalystKey", "NewSignal", "NewSilence",
           "SignalFilter", "SignalPage", "Silence", "StatusResult", "Store", "StoreUnavailable",
           "SummaryBuilder", "create_store"]

CommitObserver = Callable[[int, float], None]  # (writes in one commit, seconds it took)


def create_store(settings: Settings, *, clock: Callable[[], int] = timeutil.now_ns,
                 on_commit: CommitObserver | None = None) -> Store:
    """The store the settings ask for, not yet opened: PostgreSQL when a database URL is set,
    else the SQLite file."""
    if settings.database_url:
        from .postgres import PostgresStore

        return PostgresStore(settings.database_url, pool_size=settings.database_pool_size,
                             clock=clock, on_commit=on_commit)
    from .sqlite import SQLiteStore

    return SQLiteStore(settings.db_path, clock=clock, on_commit=on_commit)
