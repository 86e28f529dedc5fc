"""PostgreSQL going away under a real `santamon serve`: ingest answers 503 (the agent retries),
/health answers 503 (a load balancer drains the instance), never a 200 for a signal that was
not stored, and the service recovers by itself when the database is back."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg
import pytest

from .helpers import AGENT, ServerProcess, make_signal
from .pg import PostgresServer

pytestmark = pytest.mark.e2e

AGENTS = 8
TEST_SECONDS = 25  # the whole test stays within this


class RetryingAgents:
    """Agents each sending numbered signals, retrying a signal after a 5xx as the real agent
    does, until told to stop; every 200 is remembered as acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[str] = []
        self.statuses: dict[int, int] = {}
        self.stop = asyncio.Event()

    async def run(self) -> None:
        async with aiohttp.ClientSession(self.url) as http:
            await asyncio.gather(*(self._agent(http, a) for a in range(AGENTS)))

    async def _agent(self, http: aiohttp.ClientSession, agent: int) -> None:
        n = 0
        while not self.stop.is_set():
            signal_id = f"outage-{agent}-{n}"
            async with http.post("/ingest", json=make_signal(signal_id),
                                 headers=AGENT) as response:
                self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
                if response.status == 200:
                    self.acknowledged.append(signal_id)
                    n += 1
                else:
                    await asyncio.sleep(0.05)


async def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def health(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url + "/health") as response:
        return response.status


async def test_ingest_through_a_postgresql_outage(private_postgres: PostgresServer, tmp_path):
    started = time.monotonic()
    database = private_postgres.new_database()
    server = ServerProcess(tmp_path / "unused.db", env={"SANTAMON_DATABASE_URL": database})
    await asyncio.to_thread(server.start)
    agents = RetryingAgents(server.url)
    sending = asyncio.create_task(agents.run())
    try:
        await wait_for(lambda: len(agents.acknowledged) >= 200, 10, "ingest to start")

        await asyncio.to_thread(private_postgres.stop, "immediate")  # a crash, mid-ingest
        refused_before = agents.statuses.get(503, 0)
        await wait_for(lambda: agents.statuses.get(503, 0) >= refused_before + 50, 10,
                       "503s while the database is down")
        unhealthy = False
        for _ in range(40):  # /health keeps a good answer for a second
            if (unhealthy := await health(server.url) == 503):
                break
            await asyncio.sleep(0.1)
        assert unhealthy

        await asyncio.to_thread(private_postgres.start)
        resumed_from = len(agents.acknowledged)
        await wait_for(lambda: len(agents.acknowledged) >= resumed_from + 200, 10,
                       "ingest to resume")
        assert await health(server.url) == 200
    finally:
        agents.stop.set()
        await asyncio.wait_for(sending, 10)
        server.kill()
    assert set(agents.statuses) <= {200, 503}, agents.statuses
    conn = await asyncpg.connect(database)
    try:
        stored = {row[0] for row in await conn.fetch(
            "SELECT signal_id FROM signals WHERE signal_id = ANY($1::text[])",
            agents.acknowledged)}
    finally:
        await conn.close()
    assert stored == set(agents.acknowledged)  # every 200 was a stored signal
    assert time.monotonic() - started < TEST_SECONDS
