"""People's keys over a real `santamon serve`: the history, agent keys and the console name the
person who acted (the admin key is `admin`), a viewer reads everything and changes nothing,
and revoking a person's key ends their console sessions too."""

from __future__ import annotations

import re
import time

import aiohttp
import pytest

from .helpers import AGENT, ANALYST, ServerProcess, make_signal
from .test_agent_keys import call, eventually
from .test_routes import WRITES, concrete

pytestmark = pytest.mark.e2e

PERSON = re.compile(r"(analyst|viewer) key (\S+) for (\S+):\n  (\S+)")
READS = ["/signals", "/signals/s1", "/signal?signal_id=s1", "/signals/groups", "/agents",
         "/stats", "/signals/volume", "/jobs", "/metrics", "/agent-keys", "/silences",
         "/silences/preview?rule_id=SM-001"]


def person(server: ServerProcess, name: str, role: str = "analyst") -> str:
    done = server.cli("analyst-keys", "create", "--name", name, "--role", role)
    found_role, _, found_name, key = PERSON.search(done.stdout).groups()
    assert (found_role, found_name) == (role, name)
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def history(server: ServerProcess, signal_id: str) -> list[tuple[str, str]]:
    _, body = await call(server, "GET", f"/signals/{signal_id}", headers=ANALYST)
    return [(h["actor"], h["to_status"]) for h in body["history"]]


async def test_the_history_names_the_person_and_a_viewer_changes_nothing(tmp_path):
    server = ServerProcess(tmp_path / "s.db")
    alice = person(server, "alice")
    vera = person(server, "vera", "viewer")
    server.start()
    try:
        assert (await call(server, "POST", "/ingest", headers=AGENT,
                           body=[make_signal("s1"), make_signal("s2")]))[0] == 200
        assert (await call(server, "PATCH", "/signals/s1/status", headers=bearer(alice),
                           body={"status": "acknowledged", "note": "mine"}))[0] == 200
        assert (await call(server, "POST", "/signals/status", headers=ANALYST,
                           body={"signal_ids": ["s1"], "status": "resolved"}))[0] == 200
        assert await history(server, "s1") == [("alice", "acknowledged"), ("admin", "resolved")]

        # A viewer reads everything an analyst reads...
        for path in READS:
            assert (await call(server, "GET", path, headers=bearer(vera)))[0] == 200, path
        # ...and every route that changes something answers 403, saying why.
        for route in WRITES:
            status, body = await call(server, route.method, concrete(route.path),
                                      headers=bearer(vera), body={})
            assert (status, body["role"]) == (403, "viewer"), route.path
        assert await history(server, "s2") == []
        assert len((await call(server, "GET", "/agent-keys", headers=ANALYST))[1]["keys"]) == 0

        # An analyst's agent-key actions are recorded as theirs.
        status, created = await call(server, "POST", "/agent-keys", headers=bearer(alice),
                                     body={"host_ids": ["mbp-alice"]})
        (key,) = created["keys"]
        assert (status, key["created_by"]) == (200, "alice")
        status, revoked = await call(server, "DELETE", f"/agent-keys/{key['key_id']}",
                                     headers=bearer(alice))
        assert (status, revoked["revoked_by"]) == (200, "alice")

        # So are silences, what they resolve, triage of a whole group, and who ended one.
        await call(server, "POST", "/ingest", headers=AGENT, body=[
            make_signal("s3", rule_id="SM-NOISY"), make_signal("s4", rule_id="SM-GROUP")])
        status, made = await call(server, "POST", "/silences", headers=bearer(alice), body={
            "rule_id": "SM-NOISY", "comment": "build script", "duration": "1h",
            "resolve_matching": True})
        assert (status, made["silence"]["created_by"], made["resolved"]) == (201, "alice", 1)
        assert await history(server, "s3") == [("alice", "resolved")]
        status, triaged = await call(server, "POST", "/signals/status", headers=bearer(alice),
                                     body={"group": {"rule_id": "SM-GROUP",
                                                     "host_id": "mbp-alice"},
                                           "status": "acknowledged"})
        assert (status, triaged["updated"]) == (200, 1)
        assert await history(server, "s4") == [("alice", "acknowledged")]
        status, ended = await call(server, "DELETE", f"/silences/{made['silence']['id']}",
                                   headers=ANALYST)
        assert (status, ended["expired_by"]) == (200, "admin")
    finally:
        server.kill()


async def test_the_console_knows_who_signed_in_and_a_revoked_person_is_signed_out(tmp_path):
    server = ServerProcess(tmp_path / "s.db")
    alice = person(server, "alice")
    vera = person(server, "vera", "viewer")
    server.start()
    try:
        await call(server, "POST", "/ingest", headers=AGENT, body=make_signal("s1"))
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(server.url, cookie_jar=jar) as vera_console:
            async with vera_console.post("/session", json={"key": vera}) as response:
                signed_in = await response.json()
            assert (signed_in["actor"], signed_in["role"]) == ("vera", "viewer")
            async with vera_console.get("/session") as response:
                assert {k: v for k, v in (await response.json()).items()
                        if k != "csrf_token"} == {"actor": "vera", "role": "viewer"}
            async with vera_console.post("/signals/status", json={
                    "signal_ids": ["s1"], "status": "resolved"},
                    headers={"X-CSRF-Token": signed_in["csrf_token"]}) as response:
                assert response.status == 403
            async with vera_console.get("/signals") as response:
                assert response.status == 200

        async with aiohttp.ClientSession(server.url, cookie_jar=aiohttp.CookieJar(
                unsafe=True)) as alice_console:
            async with alice_console.post("/session", json={"key": alice}) as response:
                csrf = (await response.json())["csrf_token"]
            async with alice_console.post("/signals/status", json={
                    "signal_ids": ["s1"], "status": "acknowledged"},
                    headers={"X-CSRF-Token": csrf}) as response:
                assert response.status == 200
            assert await history(server, "s1") == [("alice", "acknowledged")]

            done = server.cli("analyst-keys", "revoke", "alice")
            assert "their console sessions are ended" in done.stdout
            async with alice_console.get("/session") as response:
                assert response.status == 401  # at once: sessions live in the database
            started = time.monotonic()

            async def refused() -> bool:
                return (await call(server, "GET", "/signals", headers=bearer(alice)))[0] == 401

            await eventually(refused)
            assert time.monotonic() - started < 15
        listed = server.cli("analyst-keys", "list", "--all").stdout
        assert re.search(r"alice\s+analyst\s+.*revoked .* by cli:", listed), listed
        assert re.search(r"vera\s+viewer\s+.*active", listed), listed
        # The name is free again, and names the service uses are not a person's.
        person(server, "alice", "viewer")
        taken = server.cli("analyst-keys", "create", "--name", "vera", check=False)
        assert taken.returncode == 1 and "already has a key" in taken.stderr
        reserved = server.cli("analyst-keys", "create", "--name", "admin", check=False)
        assert reserved.returncode == 2
        assert alice not in server.log() and vera not in server.log()
    finally:
        server.kill()
