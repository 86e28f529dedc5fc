"""What a failure of PostgreSQL means for the caller: StoreUnavailable (the API's 503), or a
transaction worth running again."""

from __future__ import annotations

import asyncpg

from ..base import StoreUnavailable

# Server errors, closed connections and pools, refused or reset sockets, timeouts.
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
# Serialization failure and deadlock: PostgreSQL rolled the transaction back so that another
# could go on, and running it again is the documented answer.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})


class RefusedData(StoreUnavailable):
    """The database refused what was written (a constraint, a value it cannot hold), not the
    connection: other writes grouped with it can still go through on their own."""


def unavailable(exc: BaseException) -> StoreUnavailable:
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "")[:2] in ("22", "23"):
        return RefusedData(message)
    return StoreUnavailable(message)


def worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in RETRY_SQLSTATES
