"""Silences over the API: stored but quiet, not forwarded, back to normal once they end;
maintenance windows for stale agents. Time moves by an injected clock, never by sleeping."""

from __future__ import annotations

import asyncio
import functools
import json

import aiohttp
import pytest

from santamon.app import create_app

from .helpers import AGENT, ANALYST, FakeClock, ServerProcess, make_signal, sample
from .test_jobs import FAST, eventually, get

BUILD = {"rule_id": "SM-008", "host_id": "build-mac"}


def noisy(signal_id: str, **changes) -> dict:
    return make_signal(signal_id, **{**BUILD, "severity": "high",
                                     "title": "curl https://get.example | sh", **changes})


async def post(client, path, body, status=200):
    response = await client.post(path, json=body, headers=ANALYST)
    assert response.status == status, await response.text()
    return await response.json()


async def ingest(client, *signals):
    response = await client.post("/ingest", json=list(signals), headers=AGENT)
    assert response.status == 200, await response.text()


async def queue(client, **params):
    return [s["signal_id"] for s in (await get(client, "/signals", **params))["signals"]]


async def silence(client, **body):
    created = await post(client, "/silences", {"comment": "CI build script", "duration": "1h",
                                               **body}, status=201)
    return created["silence"]


@pytest.fixture
async def hooked(aiohttp_client, settings, receiver):
    """The service with a clock the test moves and a real webhook receiver behind it."""
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "forward_webhook_url": receiver.url}), clock=clock))
    return client, clock, receiver


async def test_a_silenced_signal_is_stored_quiet_and_unforwarded_until_the_silence_ends(hooked):
    client, clock, receiver = hooked
    made = await silence(client, **BUILD, title="curl * | sh")
    assert (made["state"], made["created_by"], made["signals"]) == ("active", "admin", 0)
    await ingest(client, noisy("quiet-1"), noisy("other-title", title="curl x | bash"),
                 noisy("other-host", host_id="dev-mac"))
    await ingest(client, noisy("quiet-2"), make_signal("after-it"))

    assert sorted(await queue(client)) == ["after-it", "other-host", "other-title"]
    assert sorted(await queue(client, silenced="true")) == ["quiet-1", "quiet-2"]
    assert len(await queue(client, silenced="all")) == 5
    detail = await get(client, "/signal", signal_id="quiet-1")
    assert detail["status"] == "open" and detail["silence_id"] == made["id"]
    assert (detail["silence"]["id"], detail["silence"]["comment"]) == (made["id"],
                                                                       "CI build script")
    assert (await get(client, "/signals/after-it"))["silence"] is None
    stats = await get(client, "/stats")
    assert stats["open_by_severity"] == {"high": 2, "critical": 1}  # noisy ones are high
    assert stats["silenced_open"] == 2
    # the forwarder went past them: everything after them arrived, they did not
    await eventually(lambda: _has(receiver, "after-it"))
    await asyncio.sleep(0.3)
    assert sorted(receiver.ids()) == ["after-it", "other-host", "other-title"]
    assert (await get(client, "/jobs"))["forwarding"]["backlog"] == 0
    assert (await get(client, "/silences"))["silences"][0]["signals"] == 2

    clock.advance(3600)  # the silence is over: the next one is treated normally
    await ingest(client, noisy("loud-again"))
    assert "loud-again" in await queue(client)
    await eventually(lambda: _has(receiver, "loud-again"))
    assert "quiet-1" not in receiver.ids()
    listed = (await get(client, "/silences", state="expired"))["silences"]
    assert [s["id"] for s in listed] == [made["id"]]
    assert (await get(client, "/silences", state="active"))["silences"] == []


async def _has(receiver, signal_id):
    return signal_id in receiver.ids()


async def test_a_silence_matches_what_is_stored_and_makes_ingest_refuse_nothing(hooked):
    client, _, receiver = hooked
    long_title = "curl https://get.example/" + "x" * 600 + " | sh"
    await ingest(client, noisy("a" * 32, title=long_title))
    first = await get(client, f"/signals/{'a' * 32}")
    assert first["shortened"] == ["title"] and len(first["title"]) == 512
    # The analyst silences the title as the console shows it: the cut one.
    made = await silence(client, **BUILD, title=first["title"])
    await ingest(client, noisy("b" * 32, title=long_title),
                 noisy("c" * 32, title=long_title, context={"blob": "y" * 300_000}))
    for signal_id, shortened in (("b" * 32, ["title"]), ("c" * 32, ["context", "title"])):
        stored = await get(client, f"/signals/{signal_id}")
        assert (stored["silence_id"], stored["shortened"]) == (made["id"], shortened)
    assert (await get(client, "/silences"))["silences"][0]["signals"] == 2
    await eventually(lambda: _has(receiver, "a" * 32))
    await asyncio.sleep(0.3)  # forwarding runs every 0.1 s: the silenced ones never come
    assert receiver.ids() == ["a" * 32]


async def test_expiring_a_silence_now_keeps_it_for_the_record(hooked):
    client, clock, _ = hooked
    made = await silence(client, host_id="build-mac")
    await ingest(client, noisy("quiet"))
    clock.advance(60)
    response = await client.delete(f"/silences/{made['id']}", headers=ANALYST)
    assert response.status == 200, await response.text()
    expired = await response.json()
    assert (expired["state"], expired["expired_by"]) == ("expired", "admin")
    await ingest(client, noisy("loud"))
    assert await queue(client) == ["loud"]
    assert await queue(client, silenced="true") == ["quiet"]
    assert (await get(client, "/silences"))["silences"][0]["expired_at"] is not None
    for missing in ("99999", "abc", "1.5", "-1"):
        response = await client.delete(f"/silences/{missing}", headers=ANALYST)
        assert response.status == 404, missing
        assert (await response.json())["error"] == "no such silence"


async def test_silenced_signals_can_be_forwarded_when_asked(aiohttp_client, settings, receiver):
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "forward_webhook_url": receiver.url, "forward_silenced": True})))
    await silence(client, **BUILD)
    await ingest(client, noisy("quiet"))
    await eventually(lambda: _has(receiver, "quiet"))
    assert receiver.received[0]["silence_id"] is not None


async def test_creating_a_silence_can_resolve_what_it_matches_after_a_preview(client):
    await ingest(client, noisy("n1"), noisy("n2"), noisy("n3", title="wget x | sh"),
                 noisy("n4", host_id="dev-mac"))
    await client.patch("/signals/n2/status", json={"status": "acknowledged"}, headers=ANALYST)
    preview = await get(client, "/silences/preview", **BUILD, title="curl * | sh")
    assert preview == {"open_matching": 1}
    assert (await get(client, "/silences/preview", host_id="build-mac"))["open_matching"] == 2
    created = await post(client, "/silences", {**BUILD, "title": "curl * | sh",
                                               "comment": "known CI job", "duration": "7d",
                                               "resolve_matching": True}, status=201)
    assert created["resolved"] == 1
    detail = await get(client, "/signals/n1")
    assert detail["status"] == "resolved"
    assert detail["history"][-1]["note"] == (
        f"resolved with silence #{created['silence']['id']}: known CI job")
    assert (await get(client, "/signals/n2"))["status"] == "acknowledged"
    assert sorted(await queue(client)) == ["n3", "n4"]


@pytest.mark.parametrize(("body", "where"), [
    ({"comment": "why", "duration": "1h"}, "matcher"),
    ({"rule_id": "R", "duration": "1h"}, "comment"),
    ({"rule_id": "R", "comment": "   ", "duration": "1h"}, "comment"),
    ({"rule_id": "R", "comment": "why"}, "duration or ends_at"),
    ({"rule_id": "R", "comment": "why", "duration": "1h",
      "ends_at": "2099-01-01T00:00:00Z"}, "duration or ends_at"),
    ({"rule_id": "R", "comment": "why", "duration": "91d"}, "90 days"),
    ({"rule_id": "R", "comment": "why", "duration": "0s"}, "90 days"),
    ({"rule_id": "R", "comment": "why", "duration": "soon"}, "duration"),
    ({"rule_id": "R", "comment": "why", "ends_at": "2020-01-01T00:00:00Z"}, "90 days"),
    ({"rule_id": "R", "comment": "why", "ends_at": "2999-01-01T00:00:00Z"}, "90 days"),
    ({"rule_id": "R", "comment": "why", "duration": "1h", "severity": "urgent"}, "severity"),
    ({"rule_id": "R", "comment": "why", "duration": "1h", "matchers": {}}, "matchers"),
    ({"rule_id": "", "comment": "why", "duration": "1h"}, "rule_id"),
])
async def test_a_bad_silence_gets_a_clear_422(client, body, where):
    response = await client.post("/silences", json=body, headers=ANALYST)
    assert response.status == 422, await response.text()
    error = await response.json()
    assert error["error"] == "validation failed"
    assert where in json.dumps(error["details"])


async def test_matchers_are_case_insensitive_for_severity_only(client):
    made = await silence(client, severity="HIGH", title="Curl*")
    assert made["severity"] == "high"
    await ingest(client, noisy("lower", title="curl x"), noisy("upper", title="Curl x"))
    assert await queue(client) == ["lower"]
    preview = await client.get("/silences/preview", headers=ANALYST)
    assert preview.status == 422


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_another_instance_sees_a_new_silence_within_seconds(aiohttp_client, settings,
                                                                  request, engine):
    """Two services on one database (two instances on one PostgreSQL, or two processes on one
    SQLite file): a silence made through one is honoured by the other once its cache polls
    the version."""
    if engine == "postgres":
        settings = settings.model_copy(
            update={"database_url": request.getfixturevalue("postgres_url")})
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    await ingest(second, noisy("before"))
    await silence(first, **BUILD)
    await ingest(first, noisy("on-first"))
    assert await queue(first) == ["before"]

    async def second_honours_it():
        signal_id = f"on-second-{asyncio.get_running_loop().time()}"
        await ingest(second, noisy(signal_id))
        return (await get(second, f"/signals/{signal_id}"))["silence_id"] is not None

    await eventually(second_honours_it, within=10)


async def test_a_maintenance_window_holds_the_stale_alert_until_it_ends(aiohttp_client,
                                                                          settings):
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings.model_copy(
        update={**FAST, "stale_after": 180}), clock=clock))
    for name in ("mac-repair", "mac-fleet"):
        await client.post("/agents/heartbeat", headers=AGENT,
                          json={**sample("heartbeat"), "agent_id": name})
    window = await silence(client, host_id="mac-repair", rule_id="AGENT-STALE", duration="1d",
                           comment="in repair, ticket HW-77")
    fleet = await silence(client, rule_id="AGENT-STALE", duration="2h",
                          comment="network change tonight")
    clock.advance(400)
    await eventually(lambda: _stale(client, "mac-repair"))
    await eventually(lambda: _stale(client, "mac-fleet"))
    agents = {a["agent_id"]: a for a in (await get(client, "/agents"))["heartbeats"]}
    assert agents["mac-repair"]["status"] == "stale"  # still shown stale...
    assert agents["mac-repair"]["maintenance_until"] == window["ends_at"]  # ...in maintenance
    assert agents["mac-fleet"]["maintenance_until"] is None
    timeline = await get(client, "/agents/mac-repair")  # the agent's own page says it too
    assert timeline["agent"]["maintenance_until"] == window["ends_at"]
    alerts = await get(client, "/signals", rule_id="AGENT-STALE", status="all", silenced="all")
    # no alert for the Mac in repair; the fleet-wide silence only marks the other one's
    assert [(a["host_id"], a["silence_id"]) for a in alerts["signals"]] == [
        ("mac-fleet", fleet["id"])]
    assert await queue(client, rule_id="AGENT-STALE") == []

    clock.advance(86400)  # the window is over and the Mac is still silent: now it alerts
    alerts = await eventually(lambda: _alerts_for(client, "mac-repair"))
    assert alerts[0]["silence_id"] is None and alerts[0]["severity"] == "high"
    await asyncio.sleep(0.3)
    assert len(await _alerts_for(client, "mac-repair")) == 1


async def test_hosts_in_maintenance_are_not_counted_as_many_agents_at_once(aiohttp_client,
                                                                            settings):
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings.model_copy(update={
        **FAST, "stale_after": 180, "stale_summary_threshold": 3}), clock=clock))
    office, repair = ["office-0", "office-1", "office-2"], ["repair-0", "repair-1"]
    for name in office + repair:
        await client.post("/agents/heartbeat", headers=AGENT,
                          json={**sample("heartbeat"), "agent_id": name})
    for name in repair:
        await silence(client, host_id=name, rule_id="AGENT-STALE", duration="1d",
                      comment="in repair")
    clock.advance(400)
    for name in office + repair:
        await eventually(functools.partial(_stale, client, name))
    # Five went silent in one check, but two were expected to: three alerts, not one for many.
    alerts = await get(client, "/signals", rule_id="AGENT-STALE", status="all")
    assert sorted(a["host_id"] for a in alerts["signals"]) == office
    assert (await get(client, "/signals", rule_id="AGENT-STALE-MANY", status="all",
                      silenced="all"))["signals"] == []


async def _stale(client, agent_id):
    agents = (await get(client, "/agents"))["heartbeats"]
    return next(a for a in agents if a["agent_id"] == agent_id)["status"] == "stale"


async def _alerts_for(client, agent_id):
    body = await get(client, "/signals", rule_id="AGENT-STALE", host_id=agent_id)
    return body["signals"]


async def test_over_a_real_server_silenced_signals_are_kept_but_not_forwarded(tmp_path,
                                                                              receiver):
    server = ServerProcess(tmp_path / "signals.db", env={  # 1s: the shortest interval allowed
        "SANTAMON_FORWARD_WEBHOOK_URL": receiver.url, "SANTAMON_FORWARD_INTERVAL": "1s"})
    await asyncio.to_thread(server.start)
    try:
        async with aiohttp.ClientSession(server.url) as http:
            made = await silence(http, **BUILD)
            await ingest(http, noisy("quiet"))
            await ingest(http, make_signal("loud", host_id="build-mac"))
            await eventually(lambda: _has(receiver, "loud"))
            assert await queue(http) == ["loud"]
            assert await queue(http, silenced="true") == ["quiet"]
            assert (await get(http, "/signals/quiet"))["silence"]["id"] == made["id"]
            response = await http.delete(f"/silences/{made['id']}", headers=ANALYST)
            assert response.status == 200
            await ingest(http, noisy("after-expiry"))
            await eventually(lambda: _has(receiver, "after-expiry"))
            assert sorted(receiver.ids()) == ["after-expiry", "loud"]
            assert sorted(await queue(http)) == ["after-expiry", "loud"]
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
