"""The SQLite engine: store.py (lifetime, readers), writer.py (the group-commit thread),
writes.py and reads.py (the SQL), schema.py (versions and upgrades), maintenance.py
(checkpoints, statistics, VACUUM)."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
