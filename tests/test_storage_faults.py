"""The storage failing under a real `santamon serve`: a full disk and a deleted database file.
Whatever happens, the server never answers 200 for a signal it could not keep, and /health
says so, so that a load balancer or systemd can act on it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import AGENT, ServerProcess, make_signal

pytestmark = pytest.mark.e2e


def call(server: ServerProcess, method: str, path: str,
         body: object = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **AGENT})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def health(server: ServerProcess) -> tuple[int, dict]:
    time.sleep(1.1)  # /health caches its answer for a second
    return call(server, "GET", "/health")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, so that the disk can really fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    # Outermost: closing the file flushes what the last write left buffered, which fails too.
    with contextlib.suppress(OSError), open(filler, "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def test_health_fails_while_the_disk_is_full_and_recovers(small_disk):
    server = ServerProcess(small_disk / "signals.db",
                           env={"SANTAMON_STALE_CHECK_INTERVAL": "1h"})
    server.cwd = small_disk.parent
    server.log_path = small_disk.parent / "server.log"
    server.start()
    try:
        assert call(server, "POST", "/ingest", make_signal("before"))[0] == 200
        filler = fill(small_disk)
        refused = None
        for n in range(2000):  # whatever still fits in the log's free space goes in
            status, body = call(server, "POST", "/ingest",
                                make_signal(f"full-{n}", context={"blob": "x" * 3000}))
            if status != 200:
                refused = (n, status, body)
                break
        assert refused is not None, "the disk never filled"
        n, status, body = refused
        assert status == 503 and "retry" in body["error"]
        status, body = health(server)
        assert (status, body["status"]) == (503, "unhealthy")
        os.unlink(filler)
        assert call(server, "POST", "/ingest", make_signal(f"full-{n}"))[0] == 200
        assert health(server)[0] == 200
    finally:
        server.kill()


def test_heartbeats_are_refused_while_the_disk_is_full_and_taken_again_after(small_disk):
    """Heartbeats are acknowledged before they are written; once a flush has failed for
    want of space, the next ones are refused until a flush goes through again."""
    server = ServerProcess(small_disk / "signals.db",
                           env={"SANTAMON_STALE_CHECK_INTERVAL": "1h",
                                "SANTAMON_HEARTBEAT_FLUSH_INTERVAL": "1s"})
    server.cwd = small_disk.parent
    server.log_path = small_disk.parent / "server.log"
    server.start()

    def beat(n: int) -> int:
        return call(server, "POST", "/agents/heartbeat", {
            "agent_id": f"mac-{n}-{'x' * 200}", "timestamp": "2026-11-03T14:22:30Z",
            "version": "v" * 100, "os_version": "15.4.1"})[0]

    try:
        assert beat(0) == 200
        filler = fill(small_disk)
        deadline = time.monotonic() + 10
        n = 1
        while beat(n) != 503:
            assert time.monotonic() < deadline, "heartbeats were never refused"
            n += 1
            time.sleep(0.01)
        assert {beat(n) for n in range(n, n + 20)} == {503}  # until there is space again
        os.unlink(filler)
        deadline = time.monotonic() + 10
        while beat(5000) != 200:
            assert time.monotonic() < deadline, "heartbeats still refused"
            time.sleep(0.1)
    finally:
        server.kill()


def test_a_deleted_database_is_never_acknowledged_into(tmp_path):
    server = ServerProcess(tmp_path / "signals.db").start()
    try:
        assert call(server, "POST", "/ingest", make_signal("kept"))[0] == 200
        os.unlink(tmp_path / "signals.db")
        status, body = call(server, "POST", "/ingest", make_signal("lost"))
        assert status == 503, body
        assert "retry" in body["error"]
        status, body = health(server)
        assert status == 503 and "deleted or replaced" in body["detail"]
        # A heartbeat is acknowledged before it is written; once a flush has failed (within
        # a second) the next ones are refused.
        deadline = time.monotonic() + 10
        while call(server, "POST", "/agents/heartbeat",
                   {"agent_id": "mac", "timestamp": "2026-11-03T14:22:30Z"})[0] != 503:
            assert time.monotonic() < deadline, "heartbeats still acknowledged"
            time.sleep(0.1)
    finally:
        server.kill()
    assert "was deleted or replaced while the server was running" in server.log()
