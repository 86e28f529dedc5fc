"""The storage contract, run against every engine: one `store` fixture per engine.

Everything in test_contract.py must hold for every engine, so it talks only to the `Store`
interface. PostgreSQL runs on a throwaway server (tests/pg.py), a fresh database per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from santamon.config import Settings
from santamon.store import Store, create_store

from ..helpers import AGENT_KEY, ANALYST_KEY, FakeClock

ENGINES = ["sqlite", "postgres"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=ENGINES)
def engine_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(api_key=[AGENT_KEY], admin_key=ANALYST_KEY, db_path=tmp_path / "s.db",
                    database_url=database_url)


OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture
async def open_store(engine_settings: Settings,
                     clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Opens a store on the same database as often as asked (a restart); closes them all."""
    opened: list[Store] = []

    async def open_one() -> Store:
        store = create_store(engine_settings, clock=clock)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()
