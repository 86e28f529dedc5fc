import asyncio
import json
import sqlite3

import pytest

from .helpers import AGENT, ANALYST, make_signal, sample, sample_bytes

SAMPLES = ["signal-file-access", "signal-null-tags", "signal-correlation"]


def db_rows(settings, sql, *params):
    with sqlite3.connect(settings.db_path) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("name", SAMPLES)
async def test_every_agent_sample_is_accepted_byte_for_byte(client, settings, name):
    response = await client.post("/ingest", data=sample_bytes(name),
                                 headers={**AGENT, "Content-Type": "application/json",
                                          "User-Agent": "github.com/0x4d31/santamon/v0.3.1"})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body == {"status": "received", "signal_id": sample(name)["signal_id"],
                    "duplicate": False}
    # A 200 means committed: another connection sees the row at once.
    assert db_rows(settings, "SELECT count(*) FROM signals WHERE signal_id = ?",
                   body["signal_id"]) == [(1,)]


async def test_stored_signal_is_normalised(client):
    await client.post("/ingest", data=sample_bytes("signal-null-tags"), headers=AGENT)
    await client.post("/ingest", data=sample_bytes("signal-file-access"), headers=AGENT)
    response = await client.get("/signals/0a9b8c7d6e5f40312233445566778899", headers=ANALYST)
    signal = await response.json()
    assert signal["tags"] == []  # null from a rule without tags
    assert signal["rule_description"] is None  # omitted by the agent
    assert signal["ts"] == "2026-11-03T22:22:07.000000000Z"
    assert signal["status"] == "open"
    assert signal["context"] == sample("signal-null-tags")["context"]
    assert signal["received_at"].endswith("Z")
    response = await client.get("/signals/6f1c2a9e0b7d4c3f8a1e2d3c4b5a6978", headers=ANALYST)
    signal = await response.json()
    assert signal["ts"] == "2026-11-03T22:22:07.120934551Z"  # -08:00 moved to UTC, ns kept
    assert signal["context"] == sample("signal-file-access")["context"]  # dotted keys intact
    assert signal["tags"] == ["T1552.004", "credential-access"]


async def test_missing_tags_and_unknown_fields_are_fine(client):
    signal = make_signal("s-extra")
    del signal["tags"]
    signal["added_in_a_future_agent"] = {"x": 1}
    response = await client.post("/ingest", json=signal, headers=AGENT)
    assert response.status == 200, await response.text()


async def test_severity_and_status_are_case_insensitive(client):
    response = await client.post("/ingest", json=make_signal("s-case", severity="HIGH",
                                                             status="Open"), headers=AGENT)
    assert response.status == 200
    stored = await (await client.get("/signals/s-case", headers=ANALYST)).json()
    assert (stored["severity"], stored["status"]) == ("high", "open")


async def test_first_write_wins_and_resend_keeps_triage(client):
    await client.post("/ingest", json=make_signal("s-dup", title="first"), headers=AGENT)
    await client.patch("/signals/s-dup/status", json={"status": "resolved"}, headers=ANALYST)
    response = await client.post("/ingest", json=make_signal("s-dup", title="second"),
                                 headers=AGENT)
    assert response.status == 200
    assert (await response.json())["duplicate"] is True
    stored = await (await client.get("/signals/s-dup", headers=ANALYST)).json()
    assert (stored["title"], stored["status"]) == ("first", "resolved")


@pytest.mark.parametrize(("change", "field"), [
    ({"signal_id": ""}, "signal_id"),
    ({"signal_id": "x" * 257}, "signal_id"),
    ({"ts": "last tuesday"}, "ts"),
    ({"ts": "2026-11-03T14:22:07.1234567891Z"}, "ts"),
    ({"host_id": ""}, "host_id"),
    ({"host_id": "h" * 256}, "host_id"),
    ({"rule_id": "r" * 129}, "rule_id"),
    ({"severity": "urgent"}, "severity"),
    ({"title": ""}, "title"),
    ({"tags": "not-a-list"}, "tags"),
    ({"status": "closed"}, "status"),
    ({"context": ["not", "an", "object"]}, "context"),
    ({"context": None}, "context"),
])
async def test_invalid_fields_are_422_with_details(client, change, field):
    response = await client.post("/ingest", json=make_signal("s-bad", **change), headers=AGENT)
    assert response.status == 422
    body = await response.json()
    assert body["error"] == "validation failed"
    assert any(detail["loc"][0] == field for detail in body["details"]), body


@pytest.mark.parametrize("field", ["signal_id", "ts", "host_id", "rule_id", "severity", "title",
                                   "context"])
async def test_required_fields(client, field):
    signal = make_signal("s-missing")
    del signal[field]
    response = await client.post("/ingest", json=signal, headers=AGENT)
    assert response.status == 422
    assert (await response.json())["details"][0]["loc"] == [field]


async def test_malformed_json_is_400(client):
    response = await client.post("/ingest", data=b'{"signal_id": ', headers=AGENT)
    assert response.status == 400
    assert (await response.json())["error"] == "malformed JSON body"


async def test_json_that_is_not_a_signal_is_422(client):
    response = await client.post("/ingest", data=b'"hello"', headers=AGENT)
    assert response.status == 422


async def test_a_context_over_100kb_is_stored_shortened(client):
    """Was 413 (issue 13): the agent retries a 4xx forever, so an oversized context is stored
    with its longest strings cut instead (tests/test_shortening.py has the details)."""
    response = await client.post("/ingest", json=make_signal("s-big", context={
        "blob": "x" * 100_000, "kind": "execution"}), headers=AGENT)
    assert response.status == 200, await response.text()
    stored = await (await client.get("/signals/s-big", headers=ANALYST)).json()
    assert stored["shortened"] == ["context"]
    assert stored["original_context_bytes"] == len('{"blob":"","kind":"execution"}') + 100_000
    assert stored["context"]["kind"] == "execution"
    assert stored["context"]["blob"].startswith("xxx")
    assert stored["context"]["blob"].endswith(" bytes cut]")
    assert len(json.dumps(stored["context"], ensure_ascii=False).encode()) <= 100_000
    ok = await client.post("/ingest", json=make_signal("s-fits", context={
        "blob": "x" * 99_000}), headers=AGENT)
    fits = await (await client.get("/signals/s-fits", headers=ANALYST)).json()
    assert ok.status == 200 and fits["shortened"] == [] and fits["original_context_bytes"] is None


async def test_long_free_text_is_stored_cut_with_a_marker(client):
    """Titles, descriptions and tags come from the user's rules, which the agent does not
    limit: cut, never refused (these were 422)."""
    signal = make_signal("s-long", title="t" * 513, rule_description="d" * 2001,
                         tags=[f"tag-{n}" for n in range(51)] + ["t" * 65])
    response = await client.post("/ingest", json=signal, headers=AGENT)
    assert response.status == 200, await response.text()
    stored = await (await client.get("/signals/s-long", headers=ANALYST)).json()
    assert stored["shortened"] == ["title", "rule_description", "tags"]
    assert len(stored["title"]) <= 512 and stored["title"].endswith(" bytes cut]")
    assert len(stored["rule_description"]) <= 2000
    assert stored["tags"][:49] == [f"tag-{n}" for n in range(49)]
    assert stored["tags"][49] == "…[3 more items cut]" and len(stored["tags"]) == 50
    beat = {**sample("heartbeat"), "version": "v" * 200, "os_version": "15.4.1\x00beta"}
    assert (await client.post("/agents/heartbeat", json=beat, headers=AGENT)).status == 200
    (agent,) = (await (await client.get("/agents", headers=ANALYST)).json())["heartbeats"]
    assert len(agent["version"]) <= 128 and agent["version"].endswith(" bytes cut]")
    assert agent["os_version"] == "15.4.1\ufffdbeta"


async def test_body_over_8mib_is_413_json(client):
    response = await client.post("/ingest", data=b"[" + b" " * (8 * 1024 * 1024) + b"]",
                                 headers=AGENT)
    assert response.status == 413
    assert "error" in await response.json()


async def test_batch_reports_each_item(client, settings):
    await client.post("/ingest", json=make_signal("b-0"), headers=AGENT)
    batch = [make_signal(f"b-{i}") for i in range(5)] + [make_signal("b-1")]
    response = await client.post("/ingest", json=batch, headers=AGENT)
    assert response.status == 200
    body = await response.json()
    assert (body["received"], body["stored"], body["duplicates"]) == (6, 4, 2)
    assert [r["duplicate"] for r in body["results"]] == [True, False, False, False, False, True]
    assert db_rows(settings, "SELECT count(*) FROM signals") == [(5,)]


async def test_batch_is_all_or_nothing(client, settings):
    batch = [make_signal(f"a-{i}") for i in range(3)] + [make_signal("a-3", severity="nope")]
    response = await client.post("/ingest", json=batch, headers=AGENT)
    assert response.status == 422
    assert (await response.json())["details"][0]["loc"][:2] == [3, "severity"]
    assert db_rows(settings, "SELECT count(*) FROM signals") == [(0,)]


async def test_batch_limit_is_1000(client):
    response = await client.post("/ingest", json=[make_signal(f"l-{i}") for i in range(1001)],
                                 headers=AGENT)
    assert response.status == 422
    empty = await client.post("/ingest", json=[], headers=AGENT)
    assert (await empty.json())["received"] == 0


async def test_concurrent_ingests_share_commits_and_all_land(client, settings):
    async def send(i):
        response = await client.post("/ingest", data=json.dumps(make_signal(f"c-{i}")),
                                     headers=AGENT)
        return response.status

    statuses = await asyncio.gather(*(send(i) for i in range(300)))
    assert set(statuses) == {200}
    assert db_rows(settings, "SELECT count(*) FROM signals") == [(300,)]


@pytest.mark.parametrize("field", ["signal_id", "host_id", "rule_id"])
@pytest.mark.parametrize("bad", ["a\r\nX-Injected: 1", "nul\x00", "tab\there", "del\x7f"])
async def test_ids_with_control_characters_are_422(client, settings, field, bad):
    """An id goes into headers (forwarding) and logs; the agent's ids are 32 hex chars."""
    response = await client.post("/ingest", json=make_signal("s-ctl", **{field: bad}),
                                 headers=AGENT)
    assert response.status == 422
    assert (await response.json())["details"][0]["loc"] == [field]
    assert db_rows(settings, "SELECT count(*) FROM signals") == [(0,)]


async def test_heartbeat_agent_ids_with_control_characters_are_422(client):
    beat = {**sample("heartbeat"), "agent_id": "mac\r\n01"}
    response = await client.post("/agents/heartbeat", json=beat, headers=AGENT)
    assert response.status == 422
    assert (await response.json())["details"][0]["loc"] == ["agent_id"]


@pytest.mark.parametrize("status", ["resolved", "acknowledged", "OPEN"])
async def test_a_new_signal_is_always_stored_open(client, status):
    """Triage starts at open whatever the body says; refusing it would make the agent retry
    forever."""
    one = await client.post("/ingest", json=make_signal("st-1", status=status), headers=AGENT)
    batch = await client.post("/ingest", json=[make_signal("st-2", status=status)],
                              headers=AGENT)
    assert (one.status, batch.status) == (200, 200)
    for signal_id in ("st-1", "st-2"):
        stored = await (await client.get(f"/signals/{signal_id}", headers=ANALYST)).json()
        assert stored["status"] == "open"
    body = await (await client.get("/signals", headers=ANALYST)).json()
    assert {s["signal_id"] for s in body["signals"]} == {"st-1", "st-2"}


async def test_context_integers_beyond_64_bits_keep_their_digits(client):
    """Were 422 (issue 13). The agent's queue is a JSON round trip that makes every number in
    a context a float64, which Go writes as a plain integer up to 1e21: a uint64 near its
    maximum comes out as 18446744073709552000, beyond 64 bits. Stored digit for digit."""
    values = [2**64 - 1, -(2**63), 18446744073709552000, -(2**63) - 1, 10**20]
    response = await client.post("/ingest", json=make_signal(
        "int-big", context={"nested": [{"n": value} for value in values]}), headers=AGENT)
    assert response.status == 200, await response.text()
    raw = await (await client.get("/signals/int-big", headers=ANALYST)).read()
    assert b'[{"n":18446744073709551615},{"n":-9223372036854775808},' \
           b'{"n":18446744073709552000},{"n":-9223372036854775809},' \
           b'{"n":100000000000000000000}]' in raw
    response = await client.post("/ingest", json=[make_signal("int-a"), make_signal(
        "int-b", context={"n": 2**70})], headers=AGENT)
    assert response.status == 200
