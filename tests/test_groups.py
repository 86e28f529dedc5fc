"""Grouped repeats over the API: GET /signals/groups, and triage of a whole group or filter."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from .helpers import AGENT, ANALYST, ServerProcess, make_signal
from .test_jobs import get


def repeat(signal_id: str, second: int, rule: str = "SM-008", host: str = "build-mac",
           **changes) -> dict:
    return make_signal(signal_id, ts=f"2026-11-03T10:{second // 60:02d}:{second % 60:02d}Z",
                       rule_id=rule, host_id=host, **changes)


async def ingest(client, signals):
    response = await client.post("/ingest", json=signals, headers=AGENT)
    assert response.status == 200, await response.text()


async def all_groups(client, **params):
    groups, cursor = [], None
    for _ in range(100):
        body = await get(client, "/signals/groups", **params, **({"cursor": cursor}
                                                                 if cursor else {}))
        assert body["count"] == len(body["groups"])
        groups += body["groups"]
        if not (cursor := body["next_cursor"]):
            return groups
    raise AssertionError("paging did not end")


async def triage(client, body, status=200):
    response = await client.post("/signals/status", json=body, headers=ANALYST)
    assert response.status == status, await response.text()
    return await response.json()


async def test_groups_count_repeats_across_status_changes_and_pages(client):
    await ingest(client, [repeat(f"b{n}", n, severity="low") for n in range(30)]
                 + [repeat("b-crit", 31, severity="critical")]
                 + [repeat(f"d{n}", 2 * n, host="dev-mac") for n in range(10)]
                 + [repeat(f"k{n}", 100 + n, rule="SM-002", host=f"mac-{n}") for n in range(5)])
    groups = await all_groups(client, limit=2)
    assert [(g["rule_id"], g["host_id"], g["count"]) for g in groups] == [
        ("SM-002", "mac-4", 1), ("SM-002", "mac-3", 1), ("SM-002", "mac-2", 1),
        ("SM-002", "mac-1", 1), ("SM-002", "mac-0", 1), ("SM-008", "build-mac", 31),
        ("SM-008", "dev-mac", 10)]
    build = groups[5]
    assert (build["first_ts"], build["last_ts"]) == ("2026-11-03T10:00:00.000000000Z",
                                                     "2026-11-03T10:00:31.000000000Z")
    assert build["severity"] == "critical" and build["sample_signal_id"] == "b-crit"
    assert build["by_status"] == {"open": 31} and build["silenced"] == 0

    # triage moves counts between statuses, the newest signal included
    await triage(client, {"signal_ids": ["b-crit", "b0", "b1"], "status": "resolved"})
    await triage(client, {"signal_ids": ["b2"], "status": "acknowledged"})
    (build,) = await all_groups(client, host_id="build-mac")
    assert build["count"] == 27 and build["severity"] == "low"
    assert (build["first_ts"], build["last_ts"]) == ("2026-11-03T10:00:03.000000000Z",
                                                     "2026-11-03T10:00:29.000000000Z")
    (build,) = await all_groups(client, host_id="build-mac", status="all")
    assert build["by_status"] == {"open": 27, "acknowledged": 1, "resolved": 3}
    assert build["count"] == 31 and build["severity"] == "critical"
    (resolved,) = await all_groups(client, status="resolved")
    assert resolved["count"] == 3 and resolved["sample_signal_id"] == "b-crit"
    # the other filters, and a time window (which groups the signals themselves)
    assert [g["host_id"] for g in await all_groups(client, rule_id="SM-002", limit=3)] == [
        f"mac-{n}" for n in (4, 3, 2, 1, 0)]
    assert [g["count"] for g in await all_groups(client, severity="low")] == [27]
    window = await all_groups(client, since="2026-11-03T10:00:10Z",
                              until="2026-11-03T10:00:20Z", status="all", limit=1)
    assert [(g["host_id"], g["count"], g["by_status"]) for g in window] == [
        ("build-mac", 10, {"open": 10}), ("dev-mac", 5, {"open": 5})]
    searched = await all_groups(client, search="sm-002", limit=1)  # rule ids too
    assert [g["rule_id"] for g in searched] == ["SM-002"] * 5


async def test_a_bad_cursor_or_filter_is_a_422(client):
    for params in ({"cursor": "garbage!"}, {"limit": "0"}, {"limit": "501"},
                   {"status": "closed"}, {"silenced": "maybe"}):
        response = await client.get("/signals/groups", params=params, headers=ANALYST)
        assert response.status == 422, params
    await ingest(client, [repeat(f"x{n}", n) for n in range(3)])
    page = await get(client, "/signals", limit=1)
    response = await client.get("/signals/groups", params={"cursor": page["next_cursor"]},
                                headers=ANALYST)
    assert response.status == 422  # a page of signals does not continue a page of groups


async def test_a_group_or_filter_is_triaged_in_one_call(client):
    await ingest(client, [repeat(f"b{n}", n) for n in range(40)]
                 + [repeat(f"d{n}", n, host="dev-mac") for n in range(5)])
    await triage(client, {"signal_ids": ["b0"], "status": "acknowledged"})
    result = await triage(client, {"group": {"rule_id": "SM-008", "host_id": "build-mac"},
                                   "status": "resolved", "note": "CI noise"})
    assert result == {"updated": 40, "not_found": [], "status": "resolved", "more": False}
    detail = await get(client, "/signals/b7")
    assert detail["history"][-1]["note"] == "CI noise"
    (build,) = await all_groups(client, host_id="build-mac", status="all")
    assert build["by_status"] == {"resolved": 40}
    # a filter, narrowed by the group: only what it matches changes
    result = await triage(client, {"group": {"rule_id": "SM-008", "host_id": "build-mac"},
                                   "filter": {"until": "2026-11-03T10:00:10Z"},
                                   "status": "open"})
    assert result["updated"] == 10
    result = await triage(client, {"filter": {"host_id": "dev-mac", "status": "open"},
                                   "status": "acknowledged"})
    assert result["updated"] == 5
    assert sorted(s["signal_id"] for s in (await get(client, "/signals", limit=100))["signals"]
                  ) == sorted(f"b{n}" for n in range(10))


async def test_triage_needs_ids_or_a_selection_but_not_both(client):
    for body in ({"status": "resolved"},
                 {"status": "resolved", "signal_ids": ["a"], "group": {"rule_id": "R",
                                                                       "host_id": "h"}},
                 {"status": "resolved", "group": {"rule_id": "R"}},
                 {"status": "resolved", "filter": {"colour": "red"}},
                 {"status": "resolved", "group": {"rule_id": "R", "host_id": "h"},
                  "filter": {"host_id": "other"}}):
        response = await client.post("/signals/status", json=body, headers=ANALYST)
        assert response.status == 422, body
        assert "details" in await response.json()


GROUP_SIZE = 20_000  # enough chunks to overlap ingest; a 50,000 group is the same, longer
BATCH = 1000


async def _commits(http: aiohttp.ClientSession) -> int:
    async with http.get("/metrics", headers=ANALYST) as response:
        text = await response.text()
    return int(float(re.search(r"^santamon_store_commit_seconds_count (\S+)$", text,
                               re.MULTILINE).group(1)))


async def test_a_large_group_is_triaged_in_chunks_while_ingest_goes_on(tmp_path):
    server = ServerProcess(tmp_path / "signals.db")
    await asyncio.to_thread(server.start)
    try:
        async with aiohttp.ClientSession(server.url) as http:
            for start in range(0, GROUP_SIZE, BATCH):
                async with http.post("/ingest", headers=AGENT, json=[
                        repeat(f"big-{n}", n % 3600) for n in range(start, start + BATCH)
                ]) as response:
                    assert response.status == 200
            commits_before = await _commits(http)
            triage_done = asyncio.Event()
            acknowledged_during: list[str] = []

            async def ingest_meanwhile() -> None:
                for n in range(10_000):
                    if triage_done.is_set():
                        return
                    async with http.post("/ingest", headers=AGENT, json=make_signal(
                            f"during-{n}", host_id="other-mac")) as response:
                        assert response.status == 200
                    if not triage_done.is_set():
                        acknowledged_during.append(f"during-{n}")

            agents = asyncio.create_task(ingest_meanwhile())
            started = time.monotonic()
            async with http.post("/signals/status", headers=ANALYST, json={
                    "group": {"rule_id": "SM-008", "host_id": "build-mac"},
                    "status": "resolved", "note": "build farm"}) as response:
                assert response.status == 200, await response.text()
                result = await response.json()
            triage_done.set()
            await agents
            elapsed = time.monotonic() - started
            assert result == {"updated": GROUP_SIZE, "not_found": [], "status": "resolved",
                              "more": False}
            # Ingest was answered while the triage ran: it was not one long transaction.
            assert len(acknowledged_during) >= 5, (len(acknowledged_during), elapsed)
            assert await _commits(http) - commits_before >= GROUP_SIZE // 500
            body = await get(http, "/signals/groups", host_id="build-mac", status="all")
            assert body["groups"][0]["by_status"] == {"resolved": GROUP_SIZE}
            for signal_id in acknowledged_during:  # what came in meanwhile is stored, open
                assert (await get(http, f"/signals/{signal_id}"))["status"] == "open"
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()
