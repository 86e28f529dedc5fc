"""The PostgreSQL engine (asyncpg): store.py (lifetime, the pool, transactions), grouping.py
(concurrent ingests in one transaction), writes.py and reads.py (the SQL), schema.py (versions,
migrated under an advisory lock), maintenance.py (VACUUM, statistics), errors.py (what a
failure means), importer.py (`santamon migrate-db`)."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
