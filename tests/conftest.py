from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from santamon.app import create_app
from santamon.config import Settings

from .helpers import AGENT_KEY, AGENT_KEY_2, ANALYST_KEY, ServerProcess


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(api_key=[AGENT_KEY, AGENT_KEY_2], admin_key=ANALYST_KEY,
                    db_path=tmp_path / "signals.db")


@pytest.fixture
async def client(aiohttp_client, settings: Settings) -> AsyncIterator[TestClient]:
    yield await aiohttp_client(create_app(settings))


@pytest.fixture(autouse=True, scope="session")
def _no_server_outlives_the_tests() -> Iterator[None]:
    yield
    for proc in ServerProcess.started:
        proc.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "signals.db").start()
    yield proc
    proc.kill()
