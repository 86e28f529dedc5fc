"""What a hostile client cannot do to a real `santamon serve`: hold memory without a key, hold
connections, get plain-text answers or version strings, flood or poison the log (issue 9)."""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from santamon import app as app_module
from santamon import logs
from santamon.api import routes

from .helpers import AGENT, AGENT_KEY, ANALYST, ANALYST_KEY, ServerProcess, make_signal

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that neither fail authentication nor depend on its log."""
    proc = ServerProcess(tmp_path_factory.mktemp("hardening") / "live.db").start()
    yield proc
    proc.kill()


class Raw:
    """One raw HTTP/1.1 connection, to send what a well-behaved client library would not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: ServerProcess) -> Raw:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, within: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (last value of each name, lower case), body."""
        async with asyncio.timeout(within):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = b""
            if status >= 200 and "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
            return status, headers, body

    async def closed_by_server(self, within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def post_head(path: str, length: int | None, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: santamon", *headers]
    lines.append(f"Content-Length: {length}" if length is not None
                 else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def metric(server: ServerProcess, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics",
                                                          headers=ANALYST) as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and (
                not labels or all(f'{k}="{v}"' in line for k, v in labels.items())):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def sign_in(server: ServerProcess) -> int:
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/session", json={"key": ANALYST_KEY}) as response:
        return response.status


# -- memory without a key (item 2) -----------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [("GET", "/health"), ("DELETE", "/session"),
                                               ("GET", "/"), ("GET", "/openapi.json")])
async def test_public_routes_answer_without_waiting_for_a_body(live, method, path):
    raw = await Raw.open(live)
    try:
        await raw.send(f"{method} {path} HTTP/1.1\r\nHost: s\r\nContent-Length: {8 * MIB}\r\n"
                       "\r\n{".encode())
        status, _, _ = await raw.response()
        assert status == 200, status
    finally:
        raw.close()


async def test_sign_in_reads_a_small_body_only(live):
    raw = await Raw.open(live)
    try:
        await raw.send(post_head("/session", 8 * MIB) + b"{")
        status, headers, body = await raw.response()
        assert status == 413 and headers["content-type"] == "application/json"
        assert "error" in json.loads(body)
    finally:
        raw.close()
    raw = await Raw.open(live)
    try:  # no declared length: read up to the limit, then refused
        await raw.send(post_head("/session", None))
        chunk = b"x" * 4096
        for _ in range(8):
            await raw.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, _ = await raw.response()
        assert status == 413
    finally:
        raw.close()
    assert await sign_in(live) == 200  # the console's sign-in still works


async def test_slow_unauthenticated_bodies_hold_no_memory(tmp_path):
    server = ServerProcess(tmp_path / "mem.db").start()
    connections: list[Raw] = []
    try:
        assert server.proc is not None
        before = rss_bytes(server.proc.pid)
        blob = b"x" * MIB
        for _ in range(40):  # each declares 8 MiB, sends 2 MiB, then stalls
            raw = await Raw.open(server)
            connections.append(raw)
            raw.writer.write(post_head("/session", 8 * MIB) + blob + blob)
        await asyncio.gather(*(asyncio.wait_for(raw.writer.drain(), 20) for raw in connections))
        await asyncio.sleep(0.5)
        grown = rss_bytes(server.proc.pid) - before
        assert grown < 24 * MIB, f"RSS grew by {grown / MIB:.0f} MiB"
    finally:
        for raw in connections:
            raw.close()
        server.kill()


async def test_unauthenticated_bodies_share_one_budget(live):
    """Sign-ins whose bodies have not arrived: beyond the budget, 503 at once."""
    slots = app_module.UNAUTHENTICATED_BODY_BUDGET // routes.SESSION_BODY_LIMIT
    waiting: list[Raw] = []
    try:
        for _ in range(slots):
            raw = await Raw.open(live)
            waiting.append(raw)
            await raw.send(post_head("/session", routes.SESSION_BODY_LIMIT) + b'{"key": ')
        await asyncio.sleep(0.5)
        extra = await Raw.open(live)
        waiting.append(extra)
        await extra.send(post_head("/session", 100) + b'{"key": "')
        status, headers, body = await extra.response()
        assert status == 503 and int(headers["retry-after"]) >= 1
        assert json.loads(body)["error"]
    finally:
        for raw in waiting:
            raw.close()
    await asyncio.sleep(0.5)
    assert await sign_in(live) == 200  # the budget is given back


async def test_expect_100_continue_is_answered_only_after_the_key(live):
    body = json.dumps(make_signal("expect-1")).encode()
    raw = await Raw.open(live)
    try:
        await raw.send(post_head("/ingest", len(body), "X-API-Key: wrong-key-0123456789abcdef",
                                 "Expect: 100-continue"))
        status, _, reply = await raw.response()
        assert status == 401 and json.loads(reply)["error"]
    finally:
        raw.close()
    raw = await Raw.open(live)
    try:
        await raw.send(post_head("/ingest", len(body), f"X-API-Key: {AGENT_KEY}",
                                 "Expect: 100-continue"))
        assert (await raw.response())[0] == 100
        await raw.send(body)
        assert (await raw.response())[0] == 200
    finally:
        raw.close()
    raw = await Raw.open(live)
    try:  # a body over the route's limit is refused before it is sent
        await raw.send(post_head("/session", 8 * MIB, "Expect: 100-continue"))
        assert (await raw.response())[0] == 413
    finally:
        raw.close()


# -- answers that were 500 (item 12) ---------------------------------------------------------

async def test_a_corrupt_gzip_body_is_400(live):
    # The server closes a connection whose body it could not decode: one connection each.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        async with http.post(live.url + "/ingest", data=b"\x1f\x8b not gzip at all",
                             headers={**AGENT, "Content-Encoding": "gzip",
                                      "Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]
        good = gzip.compress(json.dumps(make_signal("gzip-1")).encode())
        async with http.post(live.url + "/ingest", data=good,
                             headers={**AGENT, "Content-Encoding": "gzip"}) as response:
            assert response.status == 200


async def test_a_client_that_goes_away_mid_body_is_499_not_500(live):
    errors_before = await metric(live, "santamon_http_requests_total", status="500")
    closed_before = await metric(live, "santamon_http_requests_total", status="499",
                                 route="/ingest")
    raw = await Raw.open(live)
    await raw.send(post_head("/ingest", 1000, f"X-API-Key: {AGENT_KEY}") + b'{"signal_id": ')
    await asyncio.sleep(0.3)
    raw.writer.transport.abort()
    for _ in range(50):
        closed = await metric(live, "santamon_http_requests_total", status="499",
                              route="/ingest")
        if closed > closed_before:
            break
        await asyncio.sleep(0.1)
    assert closed == closed_before + 1
    assert await metric(live, "santamon_ingest_rejected_total", reason="client_closed") >= 1
    assert await metric(live, "santamon_http_requests_total", status="500") == errors_before


# -- connections (item 16) -------------------------------------------------------------------

async def test_idle_and_half_sent_connections_are_closed(live):
    idle = await Raw.open(live)
    trickle = await Raw.open(live)
    after_a_request = await Raw.open(live)

    async def trickle_headers() -> None:
        await trickle.send(b"GET /health HTTP/1.1\r\nHost: s\r\n")
        for n in range(60):
            await trickle.send(b"X-%d: y\r\n" % n)
            await asyncio.sleep(1)

    sender = asyncio.create_task(trickle_headers())
    try:
        await after_a_request.send(b"GET /health HTTP/1.1\r\nHost: s\r\n\r\n")
        assert (await after_a_request.response())[0] == 200
        limit = app_module.KEEPALIVE_TIMEOUT_SECONDS + 10
        closed = await asyncio.gather(idle.closed_by_server(limit),
                                      trickle.closed_by_server(limit),
                                      after_a_request.closed_by_server(limit))
        assert closed == [True, True, True]
    finally:
        sender.cancel()
        for raw in (idle, trickle, after_a_request):
            raw.close()


# -- answers and headers aiohttp makes itself (item 18) --------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: s\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: s\r\nX-Bad: a\x01b\r\n\r\n",
    b"NOT-HTTP\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: s\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n",
])
async def test_requests_aiohttp_cannot_parse_get_a_json_error_with_our_headers(
        live, request_bytes):
    raw = await Raw.open(live)
    try:
        await raw.send(request_bytes)
        status, headers, body = await raw.response()
    finally:
        raw.close()
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "bad request"}
    assert headers["server"] == "santamon"
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


async def test_a_missing_static_file_is_a_json_404(live):
    async with aiohttp.ClientSession() as http:
        async with http.get(live.url + "/static/no-such-file.js") as response:
            assert response.status == 404
            assert response.content_type == "application/json"
            assert (await response.json())["error"]
            assert response.headers["Server"] == "santamon"
        async with http.get(live.url + "/static/app.css") as response:
            assert response.status == 200 and response.content_type == "text/css"


# -- the log (items 11 and 15) ---------------------------------------------------------------

async def test_malformed_requests_never_log_header_values_and_are_rate_limited(tmp_path):
    server = ServerProcess(tmp_path / "log.db").start()
    try:
        for n in range(40):
            raw = await Raw.open(server)
            try:
                await raw.send(f"GET / HTTP/1.1\r\nHost: s\r\nX-API-Key: {AGENT_KEY}\r\n"
                               f"Cookie: santamon_session=COOKIESECRET{n}\r\n"
                               "Authorization: Bearer BEARERSECRET\r\nSneaky\x01Header\r\n\r\n"
                               .encode())
                assert (await raw.response())[0] == 400
            finally:
                raw.close()
    finally:
        assert server.stop() == 0
    log = server.log()
    for secret in (AGENT_KEY, "COOKIESECRET", "BEARERSECRET", "Sneaky"):
        assert secret not in log, log
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "aiohttp.server" in line]
    assert 1 <= len(lines) <= logs.PROTOCOL_ERRORS_PER_MINUTE, lines
    assert "127.0.0.1" in lines[0] and "BadHttpMessage" in lines[0]


def test_sigterm_is_not_held_up_by_a_blocked_stderr(tmp_path):
    """Nobody reads the server's stderr: the log queue fills and drops, shutdown goes on."""
    server = ServerProcess(tmp_path / "blocked.db")
    proc = subprocess.Popen([sys.executable, "-m", "santamon", "serve"], env=server.env,
                            cwd=server.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20

        async def hammer() -> int:
            answered = 0
            while time.monotonic() < deadline:
                try:
                    raw = await Raw.open(server)
                except OSError:  # not listening yet
                    await asyncio.sleep(0.05)
                    continue
                try:
                    for _ in range(200):  # ~40 KB of log lines per connection
                        await raw.send(b"GET /health HTTP/1.1\r\nHost: s\r\n\r\n")
                        assert (await raw.response())[0] == 200
                        answered += 1
                finally:
                    raw.close()
                if answered >= 3000:  # several times what a 64 KiB pipe holds
                    break
            return answered

        assert asyncio.run(hammer()) >= 3000
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM waited for the blocked stderr") from None
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
