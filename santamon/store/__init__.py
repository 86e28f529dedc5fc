"""Storage layer: the `Store` interface and its SQLite implementation."""

from .base import AgentReturn, NewSignal, SignalPage, StatusResult, Store, StoreUnavailable
from .sqlite import SQLiteStore

__all__ = ["AgentReturn", "NewSignal", "SQLiteStore", "SignalPage", "StatusResult", "Store",
           "StoreUnavailable"]
