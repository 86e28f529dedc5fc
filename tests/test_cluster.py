"""Several `santamon serve` processes on one PostgreSQL database, as behind a load balancer:
instance A (one process) and instance B (`--workers 2`: a supervisor and two workers sharing
a port). Real processes, a real database, a real webhook receiver, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from santamon.api.auth.sessions import COOKIE_NAME, CSRF_HEADER
from santamon.certs import write_self_signed

from .helpers import (
    AGENT,
    ANALYST,
    ANALYST_KEY,
    Receiver,
    ServerProcess,
    free_port,
    make_signal,
    sample,
)

pytestmark = pytest.mark.e2e

TEST_SECONDS = 60  # the whole test stays within this
# The shortest intervals the settings allow, so that a job changes hands within a second.
JOBS = {"SANTAMON_STALE_AFTER": "2", "SANTAMON_STALE_CHECK_INTERVAL": "1",
        "SANTAMON_FORWARD_INTERVAL": "1"}
WORKERS = [sys.executable, "-m", "santamon", "serve", "--workers", "2"]


async def until(check: Callable[[], Awaitable[object]], what: str, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while not (result := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return result


class Fleet:
    """Agents sending unique signals through every instance in turn until told to stop; every
    200 is remembered. A refused connection (an instance that was just killed) is passed
    over, as a load balancer would."""

    def __init__(self, urls: list[str], prefix: str) -> None:
        self.urls, self.prefix = urls, prefix
        self.acknowledged: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.stop = asyncio.Event()

    async def run(self, agents: int = 8) -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(self._agent(http, n) for n in range(agents)))

    async def _agent(self, http: aiohttp.ClientSession, agent: int) -> None:
        n = 0
        while not self.stop.is_set():
            signal_id = f"{self.prefix}-{agent}-{n}"
            url = self.urls[(agent + n) % len(self.urls)]
            n += 1
            try:
                async with http.post(url + "/ingest", json=make_signal(signal_id),
                                     headers=AGENT) as response:
                    self.statuses[response.status] += 1
                    if response.status == 200:
                        self.acknowledged.append(signal_id)
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)


class Api:
    def __init__(self, http: aiohttp.ClientSession, server: ServerProcess) -> None:
        self.http, self.url = http, server.url

    async def get(self, path: str, **params) -> dict:
        async with self.http.get(self.url + path, params=params, headers=ANALYST) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def jobs(self) -> dict[str, dict]:
        return {job["id"]: job for job in (await self.get("/jobs"))["jobs"]}

    async def stale_alerts(self, agent_id: str) -> list[dict]:
        return (await self.get("/signals", rule_id="AGENT-STALE", host_id=agent_id,
                               status="all"))["signals"]


def pid_of(instance: str) -> int:
    """The process id in a default instance name, `host:pid`."""
    return int(instance.rsplit(":", 1)[1])


async def test_two_instances_one_with_two_workers_share_one_database(
        postgres_url: str, receiver: Receiver, tmp_path: Path):
    started = time.monotonic()
    env = {"SANTAMON_DATABASE_URL": postgres_url, "SANTAMON_FORWARD_WEBHOOK_URL": receiver.url,
           **JOBS}
    b = ServerProcess(tmp_path / "b" / "unused.db", env=env, command=WORKERS)
    a = ServerProcess(tmp_path / "a" / "unused.db", env=env)
    # B first, so that one of its workers holds the jobs before A exists.
    await asyncio.to_thread(b.start)
    async with aiohttp.ClientSession() as http:
        api_a, api_b = Api(http, a), Api(http, b)

        async def b_ran_both_jobs() -> bool:
            jobs = await api_b.jobs()
            return all(jobs[job]["instance"] for job in ("forward", "stale-agents"))

        await until(b_ran_both_jobs, "B to run the jobs")
        await asyncio.to_thread(a.start)
        try:
            await _scenario(api_a, api_b, a, b, http, receiver, postgres_url)
        finally:
            codes = [a.stop(), b.stop()]
        assert codes == [0, 0], f"{a.log()}\n{b.log()}"
        assert b.group() == []  # the supervisor's workers stopped with it
    assert time.monotonic() - started < TEST_SECONDS


async def _scenario(api_a: Api, api_b: Api, a: ServerProcess, b: ServerProcess,
                    http: aiohttp.ClientSession, receiver: Receiver, database: str) -> None:
    beat = sample("heartbeat")
    async with http.post(a.url + "/agents/heartbeat", headers=AGENT,
                         json={**beat, "agent_id": "mac-early"}) as response:
        assert response.status == 200

    # -- concurrent ingest through every process ----------------------------------------------
    fleet = first = Fleet([a.url, b.url], "before")
    sending = asyncio.create_task(fleet.run())
    try:
        await until(lambda: _at_least(fleet.acknowledged, 300), "ingest through both")

        # the same signal sent to both instances at once is stored once
        both = await asyncio.gather(*(http.post(server.url + "/ingest", headers=AGENT,
                                                json=make_signal("sent-to-both"))
                                      for server in (a, b)))
        assert sorted([(await r.json())["duplicate"] for r in both]) == [False, True]

        # triage through one instance is seen through the other at once
        async with http.patch(a.url + "/signals/before-0-0/status", headers=ANALYST,
                              json={"status": "acknowledged", "note": "on A"}) as response:
            assert response.status == 200
        seen = await api_b.get("/signals/before-0-0")
        assert (seen["status"], seen["history"][-1]["note"]) == ("acknowledged", "on A")
        async with http.post(b.url + "/signals/status", headers=ANALYST, json={
                "signal_ids": ["before-1-0", "before-2-0"], "status": "resolved"}) as response:
            assert (await response.json())["updated"] == 2
        assert (await api_a.get("/signals/before-2-0"))["status"] == "resolved"

        # a console session opened on A works on B (and on either worker of B)
        async with http.post(a.url + "/session", json={"key": ANALYST_KEY}) as response:
            csrf = (await response.json())["csrf_token"]
            cookie = {COOKIE_NAME: response.cookies[COOKIE_NAME].value}
        async with aiohttp.ClientSession(cookies=cookie) as console:
            for _ in range(4):
                async with console.get(b.url + "/session") as response:
                    assert (await response.json())["csrf_token"] == csrf
            async with console.patch(b.url + "/signals/before-3-0/status", json={
                    "status": "acknowledged"}, headers={CSRF_HEADER: csrf}) as response:
                assert response.status == 200
    finally:
        fleet.stop.set()
        await sending

    # -- one alert per silence, everything forwarded, every instance telling the same ---------
    await until(lambda: _alerts(api_b, "mac-early", 1), "mac-early to be stale")
    await _all_forwarded(api_a, receiver, database)
    jobs_a, jobs_b = await api_a.jobs(), await api_b.jobs()
    for job in ("forward", "stale-agents"):
        assert jobs_a[job]["instance"] == jobs_b[job]["instance"]
    holders = {pid_of(jobs_a[job]["instance"]) for job in ("forward", "stale-agents")}
    assert holders <= set(b.group()) - {b.proc.pid}  # B's workers, never its supervisor

    # -- kill -9 the job holders: another process takes the jobs over -------------------------
    killed_at = (await api_a.get("/health"))["timestamp"]
    for pid in holders:
        os.kill(pid, signal.SIGKILL)
    async with http.post(a.url + "/agents/heartbeat", headers=AGENT,
                         json={**beat, "agent_id": "mac-late"}) as response:
        assert response.status == 200
    fleet = Fleet([a.url, b.url], "after")
    sending = asyncio.create_task(fleet.run())
    try:
        await until(lambda: _at_least(fleet.acknowledged, 200), "ingest after the kill")

        async def taken_over() -> bool:
            jobs = await api_a.jobs()
            return all(jobs[job]["last_run"] > killed_at
                       and pid_of(jobs[job]["instance"]) not in holders
                       for job in ("forward", "stale-agents"))

        await until(taken_over, "another process to run the jobs")
    finally:
        fleet.stop.set()
        await sending
    await until(lambda: _alerts(api_a, "mac-late", 1), "mac-late to be stale")
    await _all_forwarded(api_b, receiver, database)
    assert len(await api_a.stale_alerts("mac-early")) == 1
    assert "starting it again" in b.log()  # B's supervisor replaced what was killed
    access = [line for line in b.log().splitlines() if "santamon.access" in line]
    assert any("worker=1" in line for line in access)
    assert any("worker=2" in line for line in access)

    # -- every acknowledged signal is stored, once ----------------------------------------------
    conn = await asyncpg.connect(database)
    try:
        acknowledged = first.acknowledged + fleet.acknowledged
        stored = await conn.fetchval(
            "SELECT count(*) FROM signals WHERE signal_id = ANY($1::text[])", acknowledged)
        assert stored == len(set(acknowledged))
        assert await conn.fetchval(
            "SELECT count(*) FROM signals WHERE signal_id = 'sent-to-both'") == 1
    finally:
        await conn.close()


async def _at_least(items: list, count: int) -> bool:
    return len(items) >= count


async def _alerts(api: Api, agent_id: str, count: int) -> bool:
    alerts = await api.stale_alerts(agent_id)
    assert len(alerts) <= count, alerts  # never a second alert for one silence
    return len(alerts) == count


async def _all_forwarded(api: Api, receiver: Receiver, database: str) -> None:
    """Wait until every stored signal reached the receiver; none may have come twice."""
    conn = await asyncpg.connect(database)
    try:
        async def done() -> bool:
            stored = {row[0] for row in await conn.fetch("SELECT signal_id FROM signals")}
            return stored <= set(receiver.ids())

        await until(done, "every signal to be forwarded")
        twice = [sid for sid, n in Counter(receiver.ids()).items() if n > 1]
        assert twice == []
        assert (await api.get("/jobs"))["forwarding"]["backlog"] == 0
    finally:
        await conn.close()


def test_workers_refuse_sqlite_with_one_clear_line(tmp_path: Path):
    server = ServerProcess(tmp_path / "signals.db", command=WORKERS)
    with contextlib.suppress(RuntimeError):
        server.start(timeout=15)
    assert server.proc is not None and server.proc.wait(15) == 2
    lines = server.log().strip().splitlines()
    assert lines == ["santamon: configuration error: SANTAMON_WORKERS: 2 workers need "
                     "PostgreSQL (SANTAMON_DATABASE_URL); SQLite has one writer by design, "
                     "so serve it with 1 worker"]
    assert not (tmp_path / "signals.db").exists()


async def test_workers_stop_with_their_supervisor_however_it_dies(postgres_url, tmp_path):
    server = ServerProcess(tmp_path / "unused.db", env={"SANTAMON_DATABASE_URL": postgres_url},
                           command=WORKERS)
    await asyncio.to_thread(server.start)
    try:
        await until(lambda: _both_workers_answer(server), "both workers to serve")
        os.kill(server.proc.pid, signal.SIGKILL)  # the supervisor alone
        await until(lambda: _group_size(server, 0), "the workers to stop", seconds=30)
        assert server.log().count("santamon stopped") == 2  # each worker stopped gracefully
    finally:
        server.kill()


async def _group_size(server: ServerProcess, size: int) -> bool:
    return len(server.group()) == size


async def _both_workers_answer(server: ServerProcess) -> bool:
    """A new connection goes to either worker: ask until each has answered one."""
    async with aiohttp.ClientSession() as http, http.get(
            server.url + "/health", ssl=server.ssl_context or True) as response:
        assert response.status == 200
    access = [line for line in server.log().splitlines() if "santamon.access" in line]
    return all(any(f"worker={n}" in line for line in access) for n in (1, 2))


async def test_workers_serve_tls_and_add_up_the_failed_handshakes_they_see(postgres_url,
                                                                          tmp_path):
    """Each worker accepts the connections of its own SO_REUSEPORT socket and runs their TLS
    handshakes (api/tls.py): a failed one is warned about by the worker that saw it, and the
    agent connection problems add up what every worker counted."""
    certs = tmp_path / "tls"
    write_self_signed(certs)
    server = ServerProcess(tmp_path / "unused.db", command=WORKERS,
                           ssl_context=ssl.create_default_context(cafile=certs / "cert.pem"),
                           env={"SANTAMON_DATABASE_URL": postgres_url,
                                "SANTAMON_TLS_CERT": str(certs / "cert.pem"),
                                "SANTAMON_TLS_KEY": str(certs / "key.pem")})
    await asyncio.to_thread(server.start)
    try:
        await until(lambda: _both_workers_answer(server), "both workers to serve over TLS")
        plain_http = 0

        async def both_workers_saw_plain_http() -> bool:
            nonlocal plain_http
            await asyncio.to_thread(_plain_http_to, server.port)
            plain_http += 1
            failed = [line for line in server.log().splitlines()
                      if "TLS handshake failed" in line]
            return all(any(f"worker={n}" in line for line in failed) for n in (1, 2))

        await until(both_workers_saw_plain_http, "a failed handshake in each worker")

        async def all_counted() -> bool:  # each worker writes its counts every 10 s
            async with aiohttp.ClientSession() as http, http.get(
                    server.url + "/agents/problems", headers=ANALYST,
                    ssl=server.ssl_context) as response:
                problems = (await response.json())["problems"]
            counted = [p["count"] for p in problems if p["kind"] == "tls_failure"]
            assert sum(counted) <= plain_http
            return counted == [plain_http]

        await until(all_counted, "the failures of both workers to be counted", seconds=30)
        assert server.stop() == 0  # SIGTERM to the supervisor
        assert server.group() == []
        stopped = [line for line in server.log().splitlines()
                   if "santamon stopped (" in line and " worker=" in line]
        assert len(stopped) == 2  # each worker stopped gracefully
    finally:
        server.kill()


def _plain_http_to(port: int) -> None:
    """What an agent configured with http:// sends to the HTTPS port."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: santamon\r\n\r\n")
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass


def test_workers_that_cannot_start_end_the_service_with_exit_code_1(tmp_path: Path):
    """Every worker fails its start (nothing listens where the database should be): each says
    why in one line, and the supervisor, after restarting them a few times, exits 1 rather
    than keep restarting them."""
    nowhere = f"postgresql://santamon@127.0.0.1:{free_port()}/santamon"
    server = ServerProcess(tmp_path / "unused.db", command=WORKERS,
                           env={"SANTAMON_DATABASE_URL": nowhere})
    with contextlib.suppress(RuntimeError):
        server.start(timeout=60)
    try:
        assert server.proc is not None and server.proc.wait(60) == 1
        log = server.log()
        cannot_start = [line for line in log.splitlines()
                        if "CRITICAL santamon cannot start: database PostgreSQL" in line]
        assert len(cannot_start) > 5, log
        assert all(re.search(r" worker=[12]$", line) for line in cannot_start), log
        assert "stopping the service" in log
        assert server.group() == []
    finally:
        server.kill()


def test_workers_on_a_port_in_use_end_the_start_with_one_line(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path / "unused.db", command=WORKERS, env={
            "SANTAMON_DATABASE_URL": "postgresql://santamon@127.0.0.1:1/never-reached",
            "SANTAMON_PORT": str(port)})
        with contextlib.suppress(RuntimeError):
            server.start(timeout=15)
        assert server.proc is not None and server.proc.wait(15) == 1
    (line,) = [line for line in server.log().splitlines() if "CRITICAL" in line]
    assert line.endswith(f"cannot start: cannot listen on 127.0.0.1:{port}: "
                         "Address already in use"), server.log()
    assert "started worker" not in server.log()
