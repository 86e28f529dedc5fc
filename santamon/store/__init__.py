"""Storage layer: the `Store` interface and its SQLite implementation."""

from .base import (
           AgentReturn,
           ForwardBatch,
           NewSignal,
           SignalPage,
           StatusResult,
           Store,
           StoreUnavailable,
)
from .sqlite import SQLiteStore

__all__ = ["AgentReturn", "ForwardBatch", "NewSignal", "SQLiteStore", "SignalPage",
           "StatusResult", "Store", "StoreUnavailable"]
