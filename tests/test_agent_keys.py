"""Agent keys bound to a host, over a real `santamon serve`: a key sends for its own host only
(anything else is 403, one AGENT-KEY-MISUSE alert per hour, and a key misuse in the agent
connection problems), rotation keeps the old key for its grace period, a revocation reaches a
running server, a restarted one and a second instance on the same PostgreSQL database, a whole
fleet's keys come from a CSV, and shared keys can be turned off."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .helpers import AGENT, AGENT_KEY, ANALYST, ServerProcess, make_signal, sample

pytestmark = pytest.mark.e2e

CREATED = re.compile(r"agent key (\S+) for host (\S+):\n  (\S+)")
POLL_WINDOW_SECONDS = 15.0  # instances poll every 2 s; generous on a loaded machine


async def call(server: ServerProcess, method: str, path: str, *, key: str | None = None,
               headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    headers = headers if headers is not None else {"X-API-Key": key} if key else {}
    async with aiohttp.ClientSession() as http, http.request(
            method, server.url + path, json=body, headers=headers) as response:
        if response.content_type != "application/json":
            return response.status, await response.text()
        return response.status, await response.json()


def create_key(server: ServerProcess, host: str) -> tuple[str, str]:
    """`santamon agent-keys create --host HOST`: (key id, key)."""
    done = server.cli("agent-keys", "create", "--host", host)
    key_id, created_host, key = CREATED.search(done.stdout).groups()
    assert created_host == host
    assert key not in done.stderr
    return key_id, key


def beat(agent_id: str) -> dict[str, Any]:
    return {**sample("heartbeat"), "agent_id": agent_id}


async def alerts(server: ServerProcess, rule_id: str) -> list[dict[str, Any]]:
    status, body = await call(server, "GET", f"/signals?rule_id={rule_id}&status=all",
                              headers=ANALYST)
    assert status == 200
    return body["signals"]


async def eventually(predicate: Any, within: float = POLL_WINDOW_SECONDS) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.2)


async def test_a_bound_key_sends_for_its_host_only(tmp_path):
    server = ServerProcess(tmp_path / "s.db")
    key_id, key = create_key(server, "mbp-alice")
    server.start()
    try:
        # Everything a correct agent sends for its own host goes through as before.
        assert (await call(server, "POST", "/agents/heartbeat", key=key,
                           body=sample("heartbeat")))[0] == 200
        for name in ("signal-file-access", "signal-null-tags", "signal-correlation"):
            status, _ = await call(server, "POST", "/ingest", key=key,
                                   body={**sample(name), "host_id": "mbp-alice"})
            assert status == 200, name
        status, batch = await call(server, "POST", "/ingest", key=key, body=[
            make_signal(f"own-{n}") for n in range(3)])
        assert (status, batch["stored"]) == (200, 3)
        # Shared keys keep working beside bound ones.
        assert (await call(server, "POST", "/agents/heartbeat", headers=AGENT,
                           body=beat("mbp-carol")))[0] == 200
        agents = {a["agent_id"]: a["auth"] for a in (await call(
            server, "GET", "/agents", headers=ANALYST))[1]["heartbeats"]}
        assert agents == {"mbp-alice": "bound", "mbp-carol": "shared"}

        # Speaking for another host: refused, saying why, however often it is tried.
        for _ in range(3):
            status, body = await call(server, "POST", "/ingest", key=key,
                                      body=make_signal("forged", host_id="mbp-bob"))
            assert status == 403
            assert (body["key_host"], body["claimed_host"]) == ("mbp-alice", "mbp-bob")
            assert "mbp-alice" in body["error"] and "mbp-bob" in body["error"]
        status, body = await call(server, "POST", "/agents/heartbeat", key=key,
                                  body=beat("mbp-bob"))
        assert (status, body["claimed_host"]) == (403, "mbp-bob")
        # A batch naming another host anywhere is refused whole.
        status, body = await call(server, "POST", "/ingest", key=key, body=[
            make_signal("batch-ok"), make_signal("batch-forged", host_id="mbp-dave")])
        assert status == 403 and "item 1" in body["error"]
        for signal_id in ("forged", "batch-ok", "batch-forged"):
            assert (await call(server, "GET", f"/signals/{signal_id}",
                               headers=ANALYST))[0] == 404

        # One alert per key and claimed host (this hour), on the key's own host.
        misuse = await alerts(server, "AGENT-KEY-MISUSE")
        assert sorted(a["context"]["claimed_host"] for a in misuse) == ["mbp-bob", "mbp-dave"]
        bob = next(a for a in misuse if a["context"]["claimed_host"] == "mbp-bob")
        assert (bob["host_id"], bob["severity"], bob["status"]) == ("mbp-alice", "critical",
                                                                    "open")
        assert bob["context"]["client_address"] == "127.0.0.1"
        assert bob["context"]["key_id"] == key_id
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics",
                                                             headers=ANALYST) as response:
            metrics = await response.text()
        assert 'santamon_agent_key_misuse_total{endpoint="/ingest"} 4.0' in metrics
        assert 'santamon_agent_key_misuse_total{endpoint="/agents/heartbeat"} 1.0' in metrics
        # Every refusal, alerted or not, is in the console's connection problems, by address.
        status, body = await call(server, "GET", "/agents/problems", headers=ANALYST)
        assert status == 200
        assert [(p["client"], p["kind"], p["count"], p["detail"]) for p in body["problems"]] == [
            ("127.0.0.1", "key_misuse", 5, "the key of mbp-alice was used for mbp-dave")]
        assert key not in server.log()
    finally:
        assert server.stop() == 0

    # Its last use was written when the server stopped, and the restarted server knows it.
    listed = server.cli("agent-keys", "list").stdout
    assert re.search(rf"{key_id}\s+mbp-alice\s+active\s+.*from 127\.0\.0\.1", listed), listed
    assert key not in listed


async def test_rotation_keeps_the_old_key_for_its_grace_period(tmp_path):
    server = ServerProcess(tmp_path / "s.db").start()
    try:
        old_id, old = create_key(server, "mbp-alice")
        await eventually(lambda: _accepted(server, old))
        status, rotated = await call(server, "POST", f"/agent-keys/{old_id}/rotate",
                                     headers=ANALYST, body={"grace": "4s"})
        assert status == 200
        assert (rotated["host_id"], rotated["replaces"], rotated["state"]) == (
            "mbp-alice", old_id, "active")
        # Both work during the grace period...
        assert await _accepted(server, rotated["key"])
        assert await _accepted(server, old)
        keys = {k["key_id"]: k for k in (await call(server, "GET", "/agent-keys",
                                                    headers=ANALYST))[1]["keys"]}
        assert keys[old_id]["state"] == "expiring"
        assert keys[old_id]["expires_at"] == rotated["replaced_valid_until"]
        assert "key" not in keys[old_id]
        # ...and once it is over only the new one does.
        await eventually(lambda: _refused(server, old), within=20)
        assert await _accepted(server, rotated["key"])
        keys = {k["key_id"]: k for k in (await call(server, "GET", "/agent-keys",
                                                    headers=ANALYST))[1]["keys"]}
        assert keys[old_id]["state"] == "expired"
        # The command line rotates too, with a grace period of its choosing.
        done = server.cli("agent-keys", "rotate", rotated["key_id"], "--grace", "0")
        newest = done.stdout.split()[-1]
        await eventually(lambda: _refused(server, rotated["key"]))
        assert await _accepted(server, newest)
    finally:
        server.kill()


async def _accepted(server: ServerProcess, key: str) -> bool:
    return (await call(server, "POST", "/agents/heartbeat", key=key,
                       body=sample("heartbeat")))[0] == 200


async def _refused(server: ServerProcess, key: str) -> bool:
    status, body = await call(server, "POST", "/agents/heartbeat", key=key,
                              body=sample("heartbeat"))
    return status == 401 and body["error"] == "missing or invalid API key"


async def test_a_revocation_reaches_the_running_server_and_survives_a_restart(tmp_path):
    server = ServerProcess(tmp_path / "s.db").start()
    try:
        key_id, key = create_key(server, "mbp-alice")
        await eventually(lambda: _accepted(server, key))  # created elsewhere: seen by polling
        server.cli("agent-keys", "revoke", key_id)
        await eventually(lambda: _refused(server, key))
    finally:
        assert server.stop() == 0
    server.start()
    try:
        assert await _refused(server, key)  # at once, before any poll
        listed = server.cli("agent-keys", "list", "--all").stdout
        assert re.search(rf"{key_id}\s+mbp-alice\s+revoked", listed)
        assert server.cli("agent-keys", "list").stdout.count("\n") == 1  # the header only
    finally:
        server.kill()


async def test_a_revocation_on_one_instance_reaches_another(tmp_path, postgres_url):
    env = {"SANTAMON_DATABASE_URL": postgres_url}
    first = ServerProcess(tmp_path / "a.db", env=env).start()
    second = ServerProcess(tmp_path / "b.db", env=env).start()
    try:
        status, created = await call(first, "POST", "/agent-keys", headers=ANALYST,
                                     body={"host_ids": ["mbp-alice"]})
        assert status == 200
        (issued,) = created["keys"]
        assert await _accepted(first, issued["key"])  # at once where it was made
        await eventually(lambda: _accepted(second, issued["key"]))
        status, revoked = await call(first, "DELETE", f"/agent-keys/{issued['key_id']}",
                                     headers=ANALYST)
        assert (status, revoked["state"], revoked["revoked_by"]) == (200, "revoked", "admin")
        assert await _refused(first, issued["key"])
        started = time.monotonic()
        await eventually(lambda: _refused(second, issued["key"]))
        assert time.monotonic() - started < POLL_WINDOW_SECONDS
        # Misuse through either instance raises the alert once: its id is deterministic.
        status, created = await call(first, "POST", "/agent-keys", headers=ANALYST,
                                     body={"host_ids": ["mbp-erin"]})
        (erin,) = created["keys"]
        await eventually(lambda: _accepted_as(second, erin["key"], "mbp-erin"))
        for server in (first, second, first):
            status, _ = await call(server, "POST", "/agents/heartbeat", key=erin["key"],
                                   body=beat("mbp-frank"))
            assert status == 403
        assert len(await alerts(second, "AGENT-KEY-MISUSE")) == 1
    finally:
        first.kill()
        second.kill()


async def test_a_fleet_gets_its_keys_from_a_csv(tmp_path):
    server = ServerProcess(tmp_path / "s.db").start()
    try:
        hosts = [f"mbp-{n:03d}" for n in range(40)]
        inventory = "host,serial\n" + "".join(f"{h},C02X{n}\n" for n, h in enumerate(hosts))
        done = server.cli("agent-keys", "create", "--from-csv", "-",
                          stdin=inventory + "\n" + f"{hosts[0]},again\n")
        rows = list(csv.reader(io.StringIO(done.stdout)))
        assert rows[0] == ["host", "key"]
        pairs = dict(rows[1:])
        assert list(pairs) == hosts  # one key per host, in order, repeats left out
        assert len(set(pairs.values())) == len(hosts)
        assert "40 agent key(s)" in done.stderr
        await eventually(lambda: _accepted_as(server, pairs[hosts[-1]], hosts[-1]))
        for host in hosts[:5]:
            assert await _accepted_as(server, pairs[host], host)
        status, _ = await call(server, "POST", "/agents/heartbeat", key=pairs[hosts[0]],
                               body=beat(hosts[1]))
        assert status == 403
        # Into a new file readable by its owner only, never over an existing one.
        out = tmp_path / "keys.csv"
        (tmp_path / "hosts.txt").write_text("mbp-x\nmbp-y\n")
        server.cli("agent-keys", "create", "--from-csv", str(tmp_path / "hosts.txt"),
                   "--out", str(out))
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert [row[0] for row in csv.reader(out.open())] == ["host", "mbp-x", "mbp-y"]
        again = server.cli("agent-keys", "create", "--from-csv", str(tmp_path / "hosts.txt"),
                           "--out", str(out), check=False)
        assert again.returncode == 2
        status, listed = await call(server, "GET", "/agent-keys?limit=5", headers=ANALYST)
        assert (status, listed["count"]) == (200, 5)
        assert all(k["created_by"].startswith("cli:") for k in listed["keys"])
    finally:
        server.kill()


async def _accepted_as(server: ServerProcess, key: str, host: str) -> bool:
    return (await call(server, "POST", "/agents/heartbeat", key=key,
                       body=beat(host)))[0] == 200


async def test_bound_only_refuses_shared_keys_saying_so(tmp_path):
    server = ServerProcess(tmp_path / "s.db", env={"SANTAMON_AGENT_KEYS": "bound-only"})
    _, key = create_key(server, "mbp-alice")
    server.start()
    try:
        status, body = await call(server, "POST", "/ingest", headers=AGENT,
                                  body=make_signal("shared"))
        assert status == 401 and "bound-only" in body["error"]
        assert await _accepted(server, key)
        # The admin key is nobody's agent key: it still works.
        assert (await call(server, "POST", "/agents/heartbeat", headers=ANALYST,
                           body=beat("mbp-admin-test")))[0] == 200
    finally:
        server.kill()
    # Once the fleet has moved, the shared key need not be configured at all.
    bare = ServerProcess(tmp_path / "s.db", env={"SANTAMON_AGENT_KEYS": "bound-only",
                                                 "SANTAMON_API_KEY": ""}).start()
    try:
        assert await _accepted(bare, key)
        status, _ = await call(bare, "POST", "/ingest", key=AGENT_KEY,
                               body=make_signal("shared"))
        assert status == 401
    finally:
        bare.kill()


def test_key_commands_explain_what_is_wrong(tmp_path: Path):
    server = ServerProcess(tmp_path / "s.db")
    assert server.cli("agent-keys", "revoke", "nope", check=False).returncode == 1
    done = server.cli("agent-keys", "rotate", "nope", check=False)
    assert done.returncode == 1 and "no valid agent key" in done.stderr
    done = server.cli("agent-keys", "rotate", "nope", "--grace", "91d", check=False)
    assert done.returncode == 2 and "90d" in done.stderr
    done = server.cli("agent-keys", "create", "--host", "bad\nhost", check=False)
    assert done.returncode == 1 and "not a host id" in done.stderr
