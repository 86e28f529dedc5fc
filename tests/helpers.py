"""Shared test material: keys, the agent's sample payloads, and a real server subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson
from aiohttp import web

from santamon.domain.keys import digest
from santamon.store import NewAgentKey, NewAnalystKey
from santamon.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"  # copies of ../shared/samples
AGENT_KEY = "agent-key-0123456789abcdef"
AGENT_KEY_2 = "agent-key-rotated-0123456789"
ANALYST_KEY = "analyst-key-0123456789abcdef"
AGENT = {"X-API-Key": AGENT_KEY}
ANALYST = {"Authorization": f"Bearer {ANALYST_KEY}"}


@dataclass(frozen=True)
class Keys:
    """Stored keys a test made: one bound to the samples' host, a viewer's and an analyst's."""

    bound: str = "smak_bound-key-of-mbp-alice-0123456789"
    bound_host: str = "mbp-alice"
    bound_id: str = "bound-1"
    viewer: str = "smpk_viewer-key-of-vera-0123456789"
    viewer_name: str = "vera"
    analyst: str = "smpk_analyst-key-of-alice-0123456789"
    analyst_name: str = "alice"


async def add_keys(db_path: Path) -> Keys:
    """Store the keys of `Keys` in the SQLite database at `db_path` (created if need be)."""
    keys = Keys()
    store = SQLiteStore(db_path)
    await store.open()
    try:
        await store.create_agent_keys([NewAgentKey(keys.bound_id, digest(keys.bound),
                                                   keys.bound_host, "test")])
        await store.create_analyst_key(NewAnalystKey("viewer-1", digest(keys.viewer),
                                                     keys.viewer_name, "viewer", "test"))
        await store.create_analyst_key(NewAnalystKey("analyst-1", digest(keys.analyst),
                                                     keys.analyst_name, "analyst", "test"))
    finally:
        await store.close()
    return keys


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def make_signal(signal_id: str, /, **changes: Any) -> dict[str, Any]:
    """The file-access sample with another id (and any field changed)."""
    signal = copy.deepcopy(sample("signal-file-access"))
    signal["signal_id"] = signal_id
    signal.update(changes)
    return signal


class FakeClock:
    """Nanoseconds since the epoch, as the service's clocks give them, moving only when told."""

    def __init__(self, start_ns: int | None = None) -> None:
        self.ns = time.time_ns() if start_ns is None else start_ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1_000_000_000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`santamon serve` as a subprocess on a free loopback port."""

    started: ClassVar[list[ServerProcess]] = []  # killed at the end of the session, whatever

    def __init__(self, db_path: Path, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, ssl_context: ssl.SSLContext | None = None,
                 command: list[str] | None = None) -> None:
        self.db_path = db_path
        self.command = command or [sys.executable, "-m", "santamon", "serve"]
        self.port = free_port()
        self.ssl_context = ssl_context  # the client side, when the server serves TLS
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SANTAMON_API_KEY": f"{AGENT_KEY},{AGENT_KEY_2}",
                    "SANTAMON_ADMIN_KEY": ANALYST_KEY, "SANTAMON_DB_PATH": str(db_path),
                    "SANTAMON_HOST": "127.0.0.1", "SANTAMON_PORT": str(self.port),
                    **(env or {})}
        self.cwd = cwd or db_path.parent
        self.log_path = db_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        # A group of its own: with --workers, killing the group stops every worker too.
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log,
                                     stderr=subprocess.STDOUT, process_group=0)
        ServerProcess.started.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1,
                                            context=self.ssl_context) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """`santamon ARGS` on this server's database and settings (it may be running)."""
        done = subprocess.run([sys.executable, "-m", "santamon", *args], env=self.env,
                              cwd=self.cwd, input=stdin, capture_output=True, text=True,
                              timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"santamon {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}{done.stderr}")
        return done

    def kill(self) -> None:
        """SIGKILL to the server and whatever it started (the group it leads)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        self.kill()  # anything left of the group
        return self.proc.returncode

    def group(self) -> list[int]:
        """Every live process of the server's group (its workers with --workers)."""
        assert self.proc is not None
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()
                and _process_group(int(entry)) == self.proc.pid]


def _process_group(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[2]) if fields[0] != "Z" else None  # a zombie is as good as gone


class AgentFleet:
    """Agents posting unique signals to a server at once, as a fleet does. Remembers every id
    answered 200 (what an agent then considers shipped) and every 5xx; `enough` is set once
    `target` ids are acknowledged, and setting `stop` ends the agents."""

    def __init__(self, url: str, prefix: str, target: int) -> None:
        self.url, self.prefix, self.target = url, prefix, target
        self.acknowledged: list[str] = []
        self.server_errors: list[int] = []
        self.enough = asyncio.Event()
        self.stop = asyncio.Event()

    async def run(self, agents: int, signals_each: int) -> None:
        await asyncio.gather(*(self._agent(a, signals_each) for a in range(agents)))

    async def _agent(self, agent: int, count: int) -> None:
        async with aiohttp.ClientSession(self.url) as http:
            for n in range(count):
                if self.stop.is_set():
                    return
                signal_id = f"{self.prefix}-{agent}-{n}"
                try:
                    async with http.post("/ingest", json=make_signal(signal_id),
                                         headers=AGENT) as response:
                        if response.status == 200:
                            self.acknowledged.append(signal_id)
                        elif response.status >= 500:
                            self.server_errors.append(response.status)
                except aiohttp.ClientError:
                    return  # the server went away: an agent would retry later
                if len(self.acknowledged) >= self.target:
                    self.enough.set()


class Receiver:
    """A real local webhook receiver that can be told to fail."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.bodies: list[bytes] = []
        self.fail_with: int | None = None
        self.attempts = 0
        self.delay = 0.0
        self.started = asyncio.Event()
        self.url = ""  # set once it listens

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.fail_with:
            return web.Response(status=self.fail_with)
        body = await request.read()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        self.received.append(orjson.loads(body))
        return web.json_response({"ok": True})

    def ids(self) -> list[str]:
        return [h["X-Santamon-Signal-Id"] for h in self.headers]
