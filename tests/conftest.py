from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from santamon.app import create_app
from santamon.config import Settings

from . import pg
from .helpers import AGENT_KEY, AGENT_KEY_2, ANALYST_KEY, Receiver, ServerProcess


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


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:
    """A webhook receiver on a free port of 127.0.0.1, at `receiver.url`."""
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    hook.url = str(server.make_url("/hook"))
    return hook


# -- PostgreSQL: one throwaway server per test session, a fresh database per test ------------

@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The URL of a server the tests may create databases on."""
    if external := os.environ.get(pg.EXTERNAL_URL_VARIABLE):
        yield external
        return
    server = pg.PostgresServer()
    try:
        yield server.start().url
    finally:
        server.destroy()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A new, empty database, dropped after the test."""
    url = pg.new_database(postgres_server_url)
    yield url
    pg.drop_database(postgres_server_url, url)


@pytest.fixture
def private_postgres() -> Iterator[pg.PostgresServer]:
    """A server of the test's own, which it may stop and start (an outage)."""
    if os.environ.get(pg.EXTERNAL_URL_VARIABLE):
        pytest.skip(f"stops the server: not done to the one of {pg.EXTERNAL_URL_VARIABLE}")
    server = pg.PostgresServer()
    try:
        yield server.start()
    finally:
        server.destroy()
