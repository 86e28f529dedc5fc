"""Querying and triage: GET /signals, GET /signals/{id} and /signal?signal_id=, status changes."""

import base64
import json

import pytest

from .helpers import AGENT, ANALYST, make_signal


async def ingest(client, *signals):
    response = await client.post("/ingest", json=list(signals), headers=AGENT)
    assert response.status == 200, await response.text()


async def ids(client, **params):
    response = await client.get("/signals", params=params, headers=ANALYST)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["count"] == len(body["signals"])
    return [s["signal_id"] for s in body["signals"]]


@pytest.fixture
async def fleet(client):
    await ingest(
        client,
        make_signal("a", ts="2026-11-03T10:00:00+01:00", severity="critical", host_id="h1",
                    rule_id="SM-001", title="Keychain dumped"),
        make_signal("b", ts="2026-11-03T09:30:00Z", severity="high", host_id="h2",
                    rule_id="SM-002", title="SSH keys read"),
        make_signal("c", ts="2026-11-03T08:00:00.123456789-02:00", severity="low",
                    host_id="h1", rule_id="SM-003", title="Odd 100%_match title"),
        make_signal("d", ts="2026-11-02T00:00:00Z", severity="medium", host_id="h3",
                    rule_id="SM-C01", title="Burst of blocked executions"),
    )
    await client.patch("/signals/d/status", json={"status": "acknowledged"}, headers=ANALYST)
    return client


async def test_newest_first_by_instant_not_string(fleet):
    # c is 10:00:00.12Z, b 09:30Z, a 09:00Z (10:00+01:00): string order would differ.
    assert await ids(fleet) == ["c", "b", "a"]
    assert await ids(fleet, status="all") == ["c", "b", "a", "d"]


async def test_filters(fleet):
    assert await ids(fleet, severity="critical") == ["a"]
    assert await ids(fleet, severity="critical,low") == ["c", "a"]
    assert await ids(fleet, status="acknowledged") == ["d"]
    assert await ids(fleet, host_id="h1") == ["c", "a"]
    assert await ids(fleet, rule_id="SM-002") == ["b"]
    assert await ids(fleet, search="keys") == ["b"]
    assert await ids(fleet, search="KEYCHAIN") == ["a"]
    assert await ids(fleet, search="sm-00") == ["c", "b", "a"]
    assert await ids(fleet, search="100%_") == ["c"]
    assert await ids(fleet, search="%") == ["c"]  # LIKE wildcards are literal
    assert await ids(fleet, search="nothing matches this") == []
    assert await ids(fleet, host_id="h1", severity="critical", status="open") == ["a"]


async def test_since_and_until_compare_instants(fleet):
    assert await ids(fleet, since="2026-11-03T09:30:00Z") == ["c", "b"]
    assert await ids(fleet, since="2026-11-03T10:30:00+01:00") == ["c", "b"]
    assert await ids(fleet, until="2026-11-03T09:30:00Z") == ["a"]
    assert await ids(fleet, since="2026-11-03T09:00:00Z", until="2026-11-03T10:00:00Z",
                     status="all") == ["b", "a"]


@pytest.mark.parametrize("params", [
    {"status": "closed"}, {"severity": "urgent"}, {"limit": "0"}, {"limit": "1001"},
    {"limit": "ten"}, {"since": "yesterday"}, {"cursor": "garbage!"}])
async def test_bad_query_parameters_are_422(fleet, params):
    response = await fleet.get("/signals", params=params, headers=ANALYST)
    assert response.status == 422
    assert (await response.json())["details"]


async def test_cursor_walks_every_match_exactly_once(client):
    # Many signals sharing a timestamp: ties must be broken stably across pages.
    signals = [make_signal(f"t-{i:03d}", ts="2026-11-03T10:00:00Z" if i % 3 else
                           f"2026-11-03T10:00:{i % 60:02d}.{i:03d}+00:00") for i in range(250)]
    for start in range(0, 250, 100):
        await ingest(client, *signals[start:start + 100])
    seen, cursor = [], None
    while True:
        params = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        body = await (await client.get("/signals", params=params, headers=ANALYST)).json()
        seen.extend(s["signal_id"] for s in body["signals"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 250 and len(set(seen)) == 250
    full = await ids(client, limit="1000")
    assert seen == full


async def test_get_one_signal_with_history(fleet):
    response = await fleet.patch("/signals/a/status",
                                 json={"status": "acknowledged", "note": "looking"},
                                 headers=ANALYST)
    assert await response.json() == {"signal_id": "a", "status": "acknowledged"}
    await fleet.patch("/signals/a/status", json={"status": "resolved"}, headers=ANALYST)
    signal = await (await fleet.get("/signals/a", headers=ANALYST)).json()
    assert signal["status"] == "resolved"
    assert signal["shipped_at"] is None
    history = [(h["from_status"], h["to_status"], h["note"]) for h in signal["history"]]
    assert history == [("open", "acknowledged", "looking"), ("acknowledged", "resolved", None)]
    assert all(h["changed_at"].endswith("Z") for h in signal["history"])


async def test_unknown_signal_is_404(fleet):
    assert (await fleet.get("/signals/nope", headers=ANALYST)).status == 404
    response = await fleet.patch("/signals/nope/status", json={"status": "resolved"},
                                 headers=ANALYST)
    assert response.status == 404


async def test_a_signal_named_in_the_query_is_the_one_its_path_names(fleet):
    await ingest(fleet, make_signal("..", title="Double dot"), make_signal("volume"))
    for signal_id in ("a", "..", "volume"):
        response = await fleet.get("/signal", params={"signal_id": signal_id}, headers=ANALYST)
        assert response.status == 200
        assert (await response.json())["signal_id"] == signal_id
    by_path = await (await fleet.get("/signals/a", headers=ANALYST)).json()
    by_query = await (await fleet.get("/signal?signal_id=a", headers=ANALYST)).json()
    assert by_query == by_path
    assert (await fleet.get("/signal?signal_id=nope", headers=ANALYST)).status == 404
    assert (await fleet.get("/signal", headers=ANALYST)).status == 422
    assert (await fleet.get("/signal?signal_id=a", headers=AGENT)).status == 403
    assert (await fleet.get("/signal?signal_id=a")).status == 401


@pytest.mark.parametrize("body", [{"status": "done"}, {}, {"status": "resolved", "x": 1},
                                  {"status": "resolved", "note": "n" * 2001}])
async def test_invalid_status_change_is_422(fleet, body):
    response = await fleet.patch("/signals/a/status", json=body, headers=ANALYST)
    assert response.status == 422


async def test_bulk_status_in_one_go(fleet):
    response = await fleet.post("/signals/status", headers=ANALYST, json={
        "signal_ids": ["a", "b", "ghost", "a"], "status": "resolved", "note": "false positive"})
    body = await response.json()
    assert (body["updated"], body["not_found"]) == (2, ["ghost"])
    assert await ids(fleet, status="resolved") == ["b", "a"]
    history = (await (await fleet.get("/signals/b", headers=ANALYST)).json())["history"]
    assert history[-1]["note"] == "false positive"


async def test_bulk_limits(fleet):
    too_many = {"signal_ids": [str(i) for i in range(1001)], "status": "resolved"}
    assert (await fleet.post("/signals/status", json=too_many, headers=ANALYST)).status == 422
    empty = {"signal_ids": [], "status": "resolved"}
    assert (await fleet.post("/signals/status", json=empty, headers=ANALYST)).status == 422


@pytest.mark.parametrize(("max_titles", "by_rule_max"), [(500, 20_000), (500, 0), (1, 20_000)])
async def test_search_gives_the_same_answer_on_every_plan(client, monkeypatch, max_titles,
                                                          by_rule_max):
    """Search goes through distinct (rule, title) pairs, then the rule index or a walk, or a
    plain filtered walk for broad terms; all must equal a brute-force substring match."""
    from santamon.store.sqlite import reads as store_module
    monkeypatch.setattr(store_module, "SEARCH_MAX_TITLES", max_titles)
    monkeypatch.setattr(store_module, "SEARCH_BY_RULE_MAX_ROWS", by_rule_max)
    titles = ["SSH keys read", "Keychain dumped", "Unsigned binary in Downloads", "50% off_x"]
    signals = [make_signal(f"q{i:02d}", title=titles[i % 4], rule_id=f"R-{i % 3}",
                           ts=f"2026-11-03T10:{i:02d}:00Z") for i in range(40)]
    await ingest(client, *signals)
    for term in ["key", "KEY", "r-1", "downloads", "50%", "_x", "nothing", "s"]:
        expected = [s["signal_id"] for s in reversed(signals)
                    if term.lower() in s["title"].lower() or term.lower() in s["rule_id"].lower()]
        assert await ids(client, search=term, limit="1000") == expected, term
        assert await ids(client, search=term, limit="1000", status="all") == expected, term
        assert await ids(client, search=term, limit="1000", severity="critical") == expected
    paged, cursor = [], None
    while True:
        params = {"search": "key", "limit": "3"} | ({"cursor": cursor} if cursor else {})
        body = await (await client.get("/signals", params=params, headers=ANALYST)).json()
        paged += [s["signal_id"] for s in body["signals"]]
        if not (cursor := body["next_cursor"]):
            break
    assert paged == await ids(client, search="key", limit="1000")


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


TS = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize("value", [
    {"ts": TS, "seq": 10**30}, {"ts": TS, "seq": -(10**30)}, {"ts": TS, "seq": 1e300},
    {"ts": TS, "seq": 1.5}, {"ts": TS, "seq": "7"}, {"ts": TS, "seq": True},
    {"ts": 5, "seq": 1}, {"ts": None, "seq": 1}, {"ts": "yesterday", "seq": 1},
    [TS, 1], {"ts": TS}, "text"])
async def test_a_forged_cursor_is_422(client, value):
    response = await client.get("/signals", params={"cursor": _cursor(value)}, headers=ANALYST)
    assert response.status == 422
    assert (await response.json())["details"][0]["loc"] == ["query", "cursor"]
