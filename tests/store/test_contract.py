"""What every storage engine promises (santamon/store/base.py), through the interface alone."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace

import orjson
import pytest

from santamon import timeutil
from santamon.domain.agents import STALE_MANY_RULE_ID, STALE_RULE_ID, stale_alert, stale_summary
from santamon.domain.keys import SERVICE_HOST
from santamon.domain.signals import SEVERITIES
from santamon.domain.silences import stale_alert_unless_held, stale_summary_marked
from santamon.store import (
    AgentFilter,
    ConnectionProblem,
    ConsoleSession,
    Heartbeat,
    HistoryRule,
    JobRun,
    KeyUse,
    Matchers,
    NameTaken,
    NewAgentKey,
    NewAnalystKey,
    NewSignal,
    NewSilence,
    SignalFilter,
    Store,
    StoreUnavailable,
)
from santamon.store.base import InvalidCursor

NS = 1_000_000_000
BASE_NS = 1_790_000_000 * NS  # 2026-09-21


def ts(seconds: float = 0, ns: int = 0) -> str:
    return timeutil.format_utc(BASE_NS + int(seconds * NS) + ns)


def signal(signal_id: str, *, at: str | None = None, host: str = "mac-1", rule: str = "SM-001",
           severity: str = "high", title: str = "Suspicious thing", context: dict | None = None,
           ) -> NewSignal:
    return NewSignal(signal_id=signal_id, ts=at or ts(), host_id=host, rule_id=rule,
                     severity=severity, title=title, tags_json=b'["t1"]',
                     context_json=orjson.dumps(context or {"kind": "execution"}),
                     rule_description=None)


KEEP_ALL = HistoryRule(sample_seconds=0)


async def beat(store: Store, clock, agent_id: str, timestamp: str, *,
               history: HistoryRule = KEEP_ALL, **fields) -> None:
    """One heartbeat, received now by the test's clock."""
    await store.record_heartbeats(
        [Heartbeat(agent_id, timestamp, timeutil.format_utc(clock()), **fields)], history)


async def walk(store: Store, query: SignalFilter) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = await store.list_signals(replace(query, cursor=cursor))
        seen += [s["signal_id"] for s in page.signals]
        if (cursor := page.next_cursor) is None:
            return seen
    raise AssertionError("paging did not end")


# -- ingest ---------------------------------------------------------------------------------

async def test_a_signal_is_stored_as_open_with_the_stores_clock(store, clock):
    assert await store.insert_signals([signal("s1", context={"a": [1, 2]})]) == [True]
    stored = await store.get_signal("s1")
    assert stored["status"] == "open"
    assert stored["received_at"] == timeutil.format_utc(clock())
    assert orjson.loads(orjson.dumps(stored["context"])) == {"a": [1, 2]}
    assert orjson.loads(orjson.dumps(stored["tags"])) == ["t1"]
    assert stored["history"] == [] and stored["shipped_at"] is None
    assert await store.get_signal("nope") is None


async def test_first_write_wins_under_concurrency(store):
    outcomes = await asyncio.gather(*(
        store.insert_signals([signal("same", title=f"version {n}")]) for n in range(20)))
    assert sorted(flag for (flag,) in outcomes) == [False] * 19 + [True]
    winner = next(n for n, (flag,) in enumerate(outcomes) if flag)
    assert (await store.get_signal("same"))["title"] == f"version {winner}"
    # within one batch and across calls; a re-send never resets triage
    assert await store.insert_signals([signal("b1"), signal("b1"), signal("same")]) == [
        True, False, False]
    await store.set_status(["b1"], "resolved", None, "alice")
    assert await store.insert_signals([signal("b1", title="again")]) == [False]
    again = await store.get_signal("b1")
    assert (again["status"], again["title"]) == ("resolved", "Suspicious thing")


async def test_a_batch_is_stored_whole_or_not_at_all(store):
    broken = replace(signal("bad"), host_id=None)  # violates the schema
    other = asyncio.create_task(store.insert_signals([signal("bystander")]))
    with pytest.raises(Exception):  # noqa: B017 - which exception is the engine's business
        await store.insert_signals([signal("ok-1"), broken, signal("ok-2")])
    assert await other == [True]
    for signal_id in ("ok-1", "ok-2", "bad"):
        assert await store.get_signal(signal_id) is None
    assert await store.insert_signals([signal("ok-1")]) == [True]


async def test_committed_signals_survive_a_reopen(open_store):
    first = await open_store()
    await first.insert_signals([signal(f"k{n}") for n in range(5)])
    await first.close()
    second = await open_store()
    assert len((await second.list_signals(SignalFilter(status=None))).signals) == 5


async def test_signals_accepted_before_close_are_stored_by_it(open_store):
    first = await open_store()
    inserts = [asyncio.create_task(first.insert_signals([signal(f"c{n}")])) for n in range(20)]
    await asyncio.sleep(0)  # every call has been taken on
    await first.close()
    assert await asyncio.gather(*inserts) == [[True]] * 20
    second = await open_store()
    assert len((await second.list_signals(SignalFilter(status=None))).signals) == 20


async def test_what_the_server_cut_is_stored_with_the_signal(store):
    """A signal stored shortened says what was cut and how big its context was; a NUL inside
    the context's JSON (an escape) is kept on every engine."""
    cut = replace(signal("cut", context={"args": ["a\u0000b", "x…[59000 bytes cut]"]}),
                  shortened=("context", "title"), original_context_bytes=123_456)
    assert await store.insert_signals([cut, signal("whole")]) == [True, True]
    stored = await store.get_signal("cut")
    assert (stored["shortened"], stored["original_context_bytes"]) == (["context", "title"],
                                                                       123_456)
    assert orjson.loads(orjson.dumps(stored["context"])) == {
        "args": ["a\u0000b", "x…[59000 bytes cut]"]}
    listed = {s["signal_id"]: s for s in (await store.list_signals(SignalFilter())).signals}
    assert listed["cut"]["shortened"] == ["context", "title"]
    assert (listed["whole"]["shortened"], listed["whole"]["original_context_bytes"]) == ([],
                                                                                         None)


# -- reading signals ------------------------------------------------------------------------

async def test_pages_are_newest_first_by_instant_then_by_arrival(store):
    await store.insert_signals([signal("a", at=ts(10)), signal("b", at=ts(5)),
                                signal("c", at=ts(10)), signal("d", at=ts(10, ns=1))])
    page = await store.list_signals(SignalFilter())
    assert [s["signal_id"] for s in page.signals] == ["d", "c", "a", "b"]


async def test_cursor_paging_is_stable_while_signals_arrive(store):
    await store.insert_signals([signal(f"old-{n:02d}", at=ts(n // 3)) for n in range(30)])
    first = await store.list_signals(SignalFilter(limit=7))
    seen = [s["signal_id"] for s in first.signals]
    boundary = first.signals[-1]["ts"]
    # newer signals, and a signal at the boundary's very instant, arrive between pages
    await store.insert_signals([signal(f"new-{n}", at=ts(100 + n)) for n in range(5)]
                               + [signal("tie", at=boundary)])
    cursor = first.next_cursor
    while cursor:
        page = await store.list_signals(SignalFilter(limit=7, cursor=cursor))
        seen += [s["signal_id"] for s in page.signals]
        cursor = page.next_cursor
    olds = [s for s in seen if s.startswith("old-")]
    assert sorted(olds) == [f"old-{n:02d}" for n in range(30)]
    assert len(seen) == len(set(seen))
    assert not any(s.startswith("new-") or s == "tie" for s in seen)


async def test_cursors_are_the_stores_own(store):
    for cursor in ("garbage!", "W10", "eyJ0cyI6IDEsICJzZXEiOiAxfQ", "e30"):
        with pytest.raises(InvalidCursor):
            await store.list_signals(SignalFilter(cursor=cursor))


async def test_since_is_inclusive_and_until_exclusive_to_the_nanosecond(store):
    await store.insert_signals([signal("before", at=ts(0, ns=-1)), signal("at", at=ts(0)),
                                signal("last", at=ts(1, ns=-1)), signal("after", at=ts(1))])
    page = await store.list_signals(SignalFilter(since=ts(0), until=ts(1)))
    assert [s["signal_id"] for s in page.signals] == ["last", "at"]


async def test_filters_combine(store):
    await store.insert_signals([
        signal("h1", host="mac-1", severity="low"), signal("h2", host="mac-2", severity="low"),
        signal("r1", host="mac-1", rule="SM-009", severity="critical"),
        signal("h3", host="mac-1", severity="medium")])
    await store.set_status(["h3"], "acknowledged", None, "alice")

    async def ids(**conditions) -> set[str]:
        return set(await walk(store, SignalFilter(**conditions)))

    assert await ids(host_id="mac-1") == {"h1", "r1"}
    assert await ids(host_id="mac-1", status=None) == {"h1", "r1", "h3"}
    assert await ids(rule_id="SM-009") == {"r1"}
    assert await ids(severities=("low", "critical")) == {"h1", "h2", "r1"}
    assert await ids(status="acknowledged") == {"h3"}
    assert await ids(status="resolved") == set()


async def test_a_list_of_severities_pages_newest_first_like_one_filter(store):
    levels = ("info", "high", "critical", "low")
    stored = [signal(f"s{n:02d}", at=ts(n // 2), severity=levels[n % 4],
                     host=f"mac-{n % 3}", title=("Curl piped" if n % 5 else "Other"))
              for n in range(40)]
    await store.insert_signals(stored)
    await store.set_status(["s02", "s03"], "resolved", None, "alice")

    def expected(keep) -> list[str]:
        chosen = [s for s in stored if keep(s)]
        # newest first; signals of one instant in reverse order of arrival
        return [s.signal_id for s in sorted(chosen, key=lambda s: (s.ts, s.signal_id),
                                            reverse=True)]

    wanted = {"high", "critical"}
    assert await walk(store, SignalFilter(severities=("high", "critical"), limit=3)) == \
        expected(lambda s: s.severity in wanted and s.signal_id not in ("s02", "s03"))
    assert await walk(store, SignalFilter(severities=("critical", "high"), status=None,
                                          host_id="mac-1", search="curl", limit=2)) == \
        expected(lambda s: s.severity in wanted and s.host_id == "mac-1"
                 and s.title == "Curl piped")


async def test_search_is_a_case_insensitive_substring_of_title_or_rule(store):
    await store.insert_signals([
        signal("t1", title="Curl piped to SH"), signal("t2", title="100% sure", rule="SM-100"),
        signal("t3", title="under_score"), signal("t4", title="underXscore"),
        signal("t5", title="nothing", rule="CURL-RULE")])

    async def found(term: str) -> set[str]:
        return set(await walk(store, SignalFilter(search=term)))

    assert await found("curl") == {"t1", "t5"}
    assert await found("PIPED TO") == {"t1"}
    assert await found("0%") == {"t2"}  # LIKE's wildcards are literal
    assert await found("r_s") == {"t3"}
    assert await found("zzz") == set()
    assert await walk(store, SignalFilter(search="curl", host_id="elsewhere")) == []


async def test_volume_counts_per_bucket_and_severity(store):
    await store.insert_signals([
        signal("v1", at="2026-11-03T22:22:07.100000000Z", severity="critical"),
        signal("v2", at="2026-11-03T22:59:59.999999999Z", severity="high"),
        signal("v3", at="2026-11-03T23:00:00.000000000Z", severity="high"),
        signal("v4", at="1969-12-31T23:30:00.000000000Z", severity="low"),
        signal("v5", at="0001-01-01T00:00:00.000000000Z", severity="info")])
    volume = await store.signal_volume("2026-11-03T00:00:00.000000000Z",
                                       "2026-11-04T00:00:00.000000000Z", 3600)
    start = 1_793_743_200  # 2026-11-03T22:00Z
    assert volume == {start: {"critical": 1, "high": 1}, start + 3600: {"high": 1}}
    # before 1970 a bucket still starts at or before its signals
    early = await store.signal_volume("1969-12-31T00:00:00.000000000Z",
                                      "1970-01-01T00:00:00.000000000Z", 3600)
    assert early == {-3600: {"low": 1}}
    assert await store.first_signal_ts() == "0001-01-01T00:00:00.000000000Z"
    assert await store.first_signal_ts("1970-01-01T00:00:00.000000000Z") == \
        "2026-11-03T22:22:07.100000000Z"


async def test_stats_count_by_status_severity_host_and_rule(store, clock):
    clock.ns = BASE_NS + 3600 * NS
    await store.insert_signals([signal("a", host="m1", severity="high"),
                                signal("b", host="m1", severity="low", rule="SM-2"),
                                signal("c", host="m2", severity="high", at=ts(-2 * 86400))])
    await store.set_status(["b"], "resolved", None, "alice")
    await beat(store, clock, "m1", ts())
    stats = await store.stats()
    assert stats["total_signals"] == 3 and stats["last_24h"] == 2
    assert stats["by_status"] == {"open": 2, "resolved": 1}
    assert stats["by_severity"] == {"high": 2, "low": 1}
    assert stats["open_by_severity"] == {"high": 2}
    assert stats["by_host"] == {"m1": 2, "m2": 1}
    assert stats["top_rules"] == {"SM-001": 2, "SM-2": 1}
    assert stats["agents"] == {"active": 1, "stale": 0, "total": 1}


async def test_stats_list_the_busiest_hosts_and_rules_first(store):
    await store.insert_signals(
        [signal("a1", host="a-host", rule="R-a")]
        + [signal(f"z{n}", host="z-host", rule="R-z") for n in range(3)]
        + [signal(f"m{n}", host="m-host", rule="R-m") for n in range(3)])
    stats = await store.stats()
    # the most signals first, ties by name: the order a reader sees in JSON
    assert list(stats["by_host"].items()) == [("m-host", 3), ("z-host", 3), ("a-host", 1)]
    assert list(stats["top_rules"].items()) == [("R-m", 3), ("R-z", 3), ("R-a", 1)]


# -- triage -----------------------------------------------------------------------------------

async def test_status_changes_keep_their_history(store, clock):
    await store.insert_signals([signal("s1"), signal("s2")])
    result = await store.set_status(["s1", "missing", "s1"], "acknowledged", "looking", "alice")
    assert (result.updated, result.not_found) == (1, ["missing"])
    clock.advance(60)
    await store.set_status(["s1"], "acknowledged", None, "bob")  # no change, no note: nothing
    await store.set_status(["s1"], "acknowledged", "still looking", "bob")  # a note is kept
    await store.set_status(["s1"], "resolved", None, "bob")
    history = (await store.get_signal("s1"))["history"]
    assert [(h["from_status"], h["to_status"], h["note"], h["actor"]) for h in history] == [
        ("open", "acknowledged", "looking", "alice"),
        ("acknowledged", "acknowledged", "still looking", "bob"),
        ("acknowledged", "resolved", None, "bob")]
    assert history[0]["changed_at"] < history[1]["changed_at"]
    assert (await store.get_signal("s2"))["history"] == []


async def test_bulk_triage_is_one_transaction_over_many(store):
    ids = [f"bulk-{n}" for n in range(1000)]
    await store.insert_signals([signal(sid) for sid in ids])
    result = await store.set_status([*ids, "ghost-1", "ghost-2"], "resolved", "noise", "alice")
    assert (result.updated, sorted(result.not_found)) == (1000, ["ghost-1", "ghost-2"])
    assert await walk(store, SignalFilter(status="open")) == []
    assert len(await walk(store, SignalFilter(status="resolved", limit=1000))) == 1000
    assert (await store.stats())["by_status"] == {"resolved": 1000}


# -- agents -----------------------------------------------------------------------------------

def alert_builder(threshold: float = 180.0):
    return functools.partial(stale_alert, threshold_seconds=threshold)


async def test_a_silence_raises_exactly_one_alert_and_a_return_is_noted(store, clock):
    await beat(store, clock, "mac-1", ts(), version="v0.3.1", os_version="15.4.1",
               uptime_seconds=100.0)
    await beat(store, clock, "mac-2", ts())
    clock.advance(200)
    await beat(store, clock, "mac-2", ts(200))
    cutoff = timeutil.format_utc(clock() - 180 * NS)
    assert await store.mark_stale_agents(cutoff, alert_builder()) == ["mac-1"]
    assert await store.mark_stale_agents(cutoff, alert_builder()) == []
    (alert,) = (await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID))).signals
    assert (alert["host_id"], alert["severity"], alert["status"]) == ("mac-1", "high", "open")
    assert orjson.loads(orjson.dumps(alert["context"]))["version"] == "v0.3.1"
    agents = {a["agent_id"]: a for a in await store.list_agents(AgentFilter())}
    assert agents["mac-1"]["status"] == "stale"
    assert agents["mac-1"]["stale_since"] == timeutil.format_utc(clock())
    assert list(agents) == ["mac-1", "mac-2"]  # stale ones first

    clock.advance(3 * 3600)
    await beat(store, clock, "mac-1", ts(3 * 3600))
    agent = (await store.list_agents(AgentFilter(status="active", since=ts(3000))))[0]
    assert (agent["agent_id"], agent["status"], agent["stale_since"]) == ("mac-1", "active",
                                                                          None)
    detail = await store.get_signal(alert["signal_id"])
    assert detail["status"] == "open"
    assert detail["history"][-1]["note"] == "reconnected after 3 h 3 min"
    assert detail["history"][-1]["actor"] == "system"
    # a second silence is a second alert
    clock.advance(200)
    cutoff = timeutil.format_utc(clock() - 180 * NS)
    assert sorted(await store.mark_stale_agents(cutoff, alert_builder())) == ["mac-1", "mac-2"]
    assert len((await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID))).signals) == 3


EVER = ("0001-01-01T00:00:00.000000000Z", "9999-01-01T00:00:00.000000000Z")


async def kept(store: Store, agent_id: str) -> list[tuple[str, tuple[str, ...] | None]]:
    """The agent's history: (agent's timestamp, why kept), oldest first."""
    history = await store.agent_history(agent_id, *EVER)
    return [(b.timestamp, b.reasons) for b in history.beats]


async def test_the_history_keeps_what_tells_the_story_and_a_sample(store, clock):
    """First heard from, reboots, version and OS changes, returns after a gap (with the last
    heartbeat before it) and after a stale period; between them one sample per interval."""
    history = HistoryRule(sample_seconds=600)
    agent = {"version": "v0.3.0", "os_version": "15.4", "uptime_seconds": 100.0}

    async def every_30s(until: float, **changes) -> None:
        agent.update(changes)
        while True:
            await beat(store, clock, "mac", ts(clock.ns / NS - BASE_NS / NS), history=history,
                       **agent)
            if clock.ns - BASE_NS >= until * NS:
                return
            clock.advance(30)
            agent["uptime_seconds"] += 30

    clock.ns = BASE_NS
    await every_30s(660)  # first at 0, a sample at 600
    clock.advance(30)
    await every_30s(750, uptime_seconds=5.0)  # rebooted at 690
    clock.advance(30)
    await every_30s(840, version="v0.3.1")  # upgraded at 780
    clock.advance(30)
    await every_30s(900, os_version="15.5")  # macOS upgraded at 870
    clock.advance(300)  # silent for 5 min: a gap
    await every_30s(1500)  # back at 1200; the next sample is due at 1800
    cutoff = timeutil.format_utc(clock() + 1)
    assert await store.mark_stale_agents(cutoff, alert_builder()) == ["mac"]
    clock.advance(60)  # stale, though silent for less than a gap
    await every_30s(1560)
    assert await kept(store, "mac") == [
        (ts(0), ("first",)), (ts(600), ("sample",)), (ts(690), ("reboot",)),
        (ts(780), ("version",)), (ts(870), ("os",)), (ts(900), ("last",)),
        (ts(1200), ("return",)), (ts(1500), ("last",)), (ts(1560), ("return",))]
    latest = (await store.list_agents(AgentFilter()))[0]
    assert (latest["timestamp"], latest["version"], latest["os_version"]) == (
        ts(1560), "v0.3.1", "15.5")


async def test_a_return_may_be_a_reboot_and_an_upgrade_too(store, clock):
    await beat(store, clock, "mac", ts(0), history=HistoryRule(), version="v1",
               uptime_seconds=5000.0)
    clock.advance(8 * 3600)  # off overnight
    await beat(store, clock, "mac", ts(8 * 3600), history=HistoryRule(), version="v2",
               uptime_seconds=60.0)
    assert await kept(store, "mac") == [(ts(0), ("first",)),
                                        (ts(8 * 3600), ("return", "reboot", "version"))]


async def test_sample_zero_keeps_every_heartbeat(store, clock):
    for n in range(5):
        await beat(store, clock, "mac", ts(n), history=HistoryRule(sample_seconds=0))
        clock.advance(1)
    assert await kept(store, "mac") == [(ts(0), ("first",))] + [
        (ts(n), ("sample",)) for n in range(1, 5)]


async def test_an_older_heartbeat_never_moves_an_agent_back(store, clock):
    """Servers sharing a database flush on their own: a heartbeat received before the one
    stored (or a flush retried after it went through) changes nothing."""
    earlier = timeutil.format_utc(clock())
    clock.advance(10)
    await beat(store, clock, "mac", ts(10), version="v2")
    await store.record_heartbeats(
        [Heartbeat("mac", ts(5), earlier, version="v1", uptime_seconds=1.0)], KEEP_ALL)
    await beat(store, clock, "mac", ts(10), version="v2")  # the same again
    (agent,) = await store.list_agents(AgentFilter())
    assert (agent["timestamp"], agent["version"], agent["last_seen"]) == (
        ts(10), "v2", timeutil.format_utc(clock()))
    assert await kept(store, "mac") == [(ts(10), ("first",))]


async def test_heartbeats_of_one_agent_in_one_call_apply_in_order_of_receipt(store, clock):
    at = [timeutil.format_utc(clock() + n * 30 * NS) for n in range(3)]
    await store.record_heartbeats([
        Heartbeat("mac", ts(60), at[2], version="v2", uptime_seconds=10.0),
        Heartbeat("mac", ts(0), at[0], version="v1", uptime_seconds=500.0),
        Heartbeat("mac", ts(30), at[1], version="v1", uptime_seconds=530.0),
        Heartbeat("other", ts(0), at[1])], HistoryRule())
    assert await kept(store, "mac") == [(ts(0), ("first",)), (ts(60), ("reboot", "version"))]
    agents = {a["agent_id"]: a for a in await store.list_agents(AgentFilter())}
    assert (agents["mac"]["first_seen"], agents["mac"]["last_seen"]) == (at[0], at[2])
    assert agents["other"]["first_seen"] == at[1]


async def test_agent_history_gives_a_window_and_its_edges(store, clock):
    clock.ns = BASE_NS
    for n in range(6):
        await beat(store, clock, "mac", ts(n * 60))
        await beat(store, clock, "neighbour", ts(n * 60))
        clock.advance(60)
    received = [timeutil.format_utc(BASE_NS + n * 60 * NS) for n in range(6)]
    history = await store.agent_history("mac", received[2], received[4])
    assert [b.received_at for b in history.beats] == received[1:5]  # 1 before, 4 after
    assert history.beats[2].reasons == ("sample",)
    assert (history.agent["agent_id"], history.agent["last_seen"]) == ("mac", received[5])
    assert history.agent["status"] == "active"
    assert [b.received_at for b in (await store.agent_history(
        "mac", received[0], received[2])).beats] == received[0:3]
    assert await store.agent_history("nobody", *EVER) is None


async def test_many_agents_silent_in_one_check_raise_one_alert_naming_them(store, clock):
    for n in range(12):
        await beat(store, clock, f"office-{n:02d}", ts())
    await beat(store, clock, "elsewhere", ts())
    clock.advance(200)
    await beat(store, clock, "elsewhere", ts(200))
    cutoff = timeutil.format_utc(clock() - 180 * NS)
    summary = functools.partial(stale_summary, threshold_seconds=180.0, over=10)
    marked = await store.mark_stale_agents(cutoff, alert_builder(), summary)
    assert sorted(marked) == [f"office-{n:02d}" for n in range(12)]
    assert await store.mark_stale_agents(cutoff, alert_builder(), summary) == []
    assert (await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID))).signals == []
    (alert,) = (await store.list_signals(SignalFilter(rule_id=STALE_MANY_RULE_ID))).signals
    assert (alert["host_id"], alert["severity"]) == (SERVICE_HOST, "high")
    context = orjson.loads(orjson.dumps(alert["context"]))
    assert context["count"] == 12 and context["agent_ids"] == sorted(marked)
    assert alert["title"].startswith("12 agents stopped sending heartbeats at once: office-00")
    stale = {a["agent_id"] for a in await store.list_agents(AgentFilter(status="stale"))}
    assert stale == set(marked)  # each still shows as stale
    # as few as the threshold: one alert each, as before
    clock.advance(200)
    marked = await store.mark_stale_agents(timeutil.format_utc(clock() - 180 * NS),
                                           alert_builder(), summary)
    assert marked == ["elsewhere"]
    assert len((await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID))).signals) == 1


async def test_a_heartbeat_records_how_its_agent_authenticated(store, clock):
    await beat(store, clock, "mac-1", ts(), auth="shared")
    await beat(store, clock, "mac-2", ts())
    agents = {a["agent_id"]: a["auth"] for a in await store.list_agents(AgentFilter())}
    assert agents == {"mac-1": "shared", "mac-2": None}
    clock.advance(1)
    await beat(store, clock, "mac-1", ts(1), auth="bound")
    clock.advance(1)
    await beat(store, clock, "mac-1", ts(2))  # unknown: left as it was
    agents = {a["agent_id"]: a["auth"] for a in await store.list_agents(AgentFilter())}
    assert agents["mac-1"] == "bound"


async def test_known_agents_are_those_that_sent_a_heartbeat_or_a_signal(store, clock):
    await beat(store, clock, "beats", ts())
    await store.insert_signals([signal("s1", host="signals")])
    assert await store.known_agents(["beats", "signals", "stranger", "beats"]) == {
        "beats", "signals"}
    assert await store.known_agents([]) == set()


async def test_heartbeats_are_pruned_but_each_agents_latest_stays(store, clock):
    for n in range(3):
        await beat(store, clock, "old-agent", ts(n))
        await beat(store, clock, "busy-agent", ts(n))
        clock.advance(1)
    clock.advance(86400)
    await beat(store, clock, "busy-agent", ts(86400))
    cutoff = timeutil.format_utc(clock() - 3600 * NS)
    assert await store.prune_heartbeats(cutoff, 2) == 2
    assert await store.prune_heartbeats(cutoff, 100) == 3
    assert await store.prune_heartbeats(cutoff, 100) == 0
    agents = {a["agent_id"]: a for a in await store.list_agents(AgentFilter())}
    assert set(agents) == {"old-agent", "busy-agent"}
    assert agents["old-agent"]["timestamp"] == ts(2)


async def test_resolved_signals_are_pruned_with_their_history(store, clock):
    await store.insert_signals([signal(f"s{n}", at=ts(-86400 * 30)) for n in range(4)])
    await store.set_status(["s0", "s1"], "resolved", "done", "alice")
    await store.set_status(["s2"], "acknowledged", None, "alice")
    await store.mark_shipped(["s0"], (await store.unshipped(10)).end)
    clock.advance(86400 * 40)
    cutoff = timeutil.format_utc(clock() - 86400 * NS)
    assert await store.prune_resolved_signals(cutoff, 1) == 1
    assert await store.prune_resolved_signals(cutoff, 10) == 1
    assert await store.prune_resolved_signals(cutoff, 10) == 0
    assert set(await walk(store, SignalFilter(status=None))) == {"s2", "s3"}
    assert (await store.stats())["total_signals"] == 2


# -- forwarding ---------------------------------------------------------------------------------

async def test_forwarding_positions_never_skip_or_repeat(store, clock):
    await store.insert_signals([signal(f"f{n}", severity="low" if n % 2 else "high")
                                for n in range(6)])
    batch = await store.unshipped(4)
    assert [s["signal_id"] for s in batch.signals] == ["f0", "f1", "f2", "f3"]
    assert batch.more and batch.positions[-1] == batch.end
    # f0 and f1 delivered, f2 failed: the position stops after f1
    await store.mark_shipped(["f0", "f1"], batch.positions[1])
    batch = await store.unshipped(10)
    assert [s["signal_id"] for s in batch.signals] == ["f2", "f3", "f4", "f5"]
    assert not batch.more
    assert await store.forward_backlog(("high",)) == 2  # f2, f4
    # a signal shipped out of order is not offered again
    await store.mark_shipped(["f4"], batch.start)
    assert [s["signal_id"] for s in (await store.unshipped(10)).signals] == ["f2", "f3", "f5"]
    # a position never moves back
    await store.mark_shipped([], batch.start)
    await store.mark_shipped(["f2", "f3", "f5"], batch.end)
    await store.mark_shipped([], batch.start)
    assert (await store.unshipped(10)).signals == []
    assert (await store.get_signal("f2"))["shipped_at"] == timeutil.format_utc(clock())
    # the newest signal pruned, then a new one: it still comes after everything shipped
    await store.set_status(["f5"], "resolved", None, "alice")
    clock.advance(86400 * 400)
    assert await store.prune_resolved_signals(timeutil.format_utc(clock()), 10) == 1
    await store.insert_signals([signal("after-prune")])
    assert [s["signal_id"] for s in (await store.unshipped(10)).signals] == ["after-prune"]
    assert await store.forward_backlog(("high",)) == 1


async def test_a_scan_goes_on_after_a_batch_without_moving_the_position(store):
    """The forwarder goes on past a signal it could not deliver (`after`) while the recorded
    position stays before that signal, so it is offered again by the next full scan."""
    await store.insert_signals([signal(f"g{n}") for n in range(5)])
    first = await store.unshipped(2)
    assert [s["signal_id"] for s in first.signals] == ["g0", "g1"]
    await store.mark_shipped(["g1"], first.start)  # g0 failed: the position stays put
    after = await store.unshipped(2, after=first.end)
    assert [s["signal_id"] for s in after.signals] == ["g2", "g3"]
    assert after.start == first.end and after.more
    await store.mark_shipped(["g2", "g3"], first.start)
    rest = await store.unshipped(10, after=after.end)
    assert [s["signal_id"] for s in rest.signals] == ["g4"] and not rest.more
    assert [s["signal_id"] for s in (await store.unshipped(10)).signals] == ["g0", "g4"]


async def test_forwarding_position_survives_a_reopen(open_store):
    first = await open_store()
    await first.insert_signals([signal(f"p{n}") for n in range(3)])
    batch = await first.unshipped(10)
    await first.mark_shipped(["p0"], batch.positions[0])
    await first.close()
    second = await open_store()
    assert [s["signal_id"] for s in (await second.unshipped(10)).signals] == ["p1", "p2"]


async def test_forwarding_offers_every_signal_once_while_two_stores_ingest(open_store):
    """Two stores on one database, as two processes: small batches commit through one while a
    large batch is still being stored through the other, so transactions commit out of the
    order of their signals, yet a forwarder draining meanwhile is offered every signal
    exactly once."""
    large, small = await open_store(), await open_store()
    stored: list[str] = []
    offered: list[str] = []
    ingesting = True

    async def ingest(store: Store, prefix: str, batches: int, size: int) -> None:
        for n in range(batches):
            batch = [signal(f"{prefix}-{n}-{k}", host=f"mac-{k % 7}",
                            severity=SEVERITIES[k % len(SEVERITIES)]) for k in range(size)]
            await store.insert_signals(batch)
            stored.extend(s.signal_id for s in batch)
            await asyncio.sleep(0)

    async def forward() -> None:
        for _ in range(100_000):
            finished = not ingesting
            batch = await small.unshipped(100)
            offered.extend(s["signal_id"] for s in batch.signals)
            await small.mark_shipped([s["signal_id"] for s in batch.signals], batch.end)
            if finished and await small.forward_backlog(SEVERITIES) == 0:
                return
        raise AssertionError("the forwarder never caught up")

    forwarder = asyncio.create_task(forward())
    await asyncio.gather(ingest(large, "large", 3, 2000), ingest(small, "small", 100, 3))
    ingesting = False
    await forwarder
    assert len(offered) == len(set(offered))
    assert sorted(offered) == sorted(stored)


# -- agent connection problems ------------------------------------------------------------------

def problem(hour: int, client: str, kind: str, count: int, seen: float,
            detail: str) -> ConnectionProblem:
    return ConnectionProblem(ts(3600 * hour), client, kind, count, ts(3600 * hour + seen),
                             detail)


async def test_connection_problems_add_up_across_writes_and_processes(open_store):
    """Every process adds its own counts per hour; the latest detail wins, whoever wrote it."""
    first, second = await open_store(), await open_store()
    await first.add_connection_problems([
        problem(0, "10.0.0.7", "tls_failure", 3, 10, "untrusted (first)"),
        problem(1, "10.0.0.7", "tls_failure", 2, 30, "untrusted (latest)"),
        problem(1, "10.0.0.8", "wrong_key", 1, 5, "claimed mbp-bob"),
    ])
    await second.add_connection_problems([
        problem(1, "10.0.0.7", "tls_failure", 4, 20, "untrusted (older)"),
        problem(1, "10.0.0.7", "context_shortened", 1, 40, "signal s1"),
    ])
    await first.add_connection_problems([problem(1, "10.0.0.8", "wrong_key", 1, 50, "again")])
    rows = await second.connection_problems(ts(0), 100)
    assert rows == [
        {"client": "10.0.0.8", "kind": "wrong_key", "count": 2, "last_seen": ts(3650),
         "detail": "again"},
        {"client": "10.0.0.7", "kind": "context_shortened", "count": 1, "last_seen": ts(3640),
         "detail": "signal s1"},
        {"client": "10.0.0.7", "kind": "tls_failure", "count": 9, "last_seen": ts(3630),
         "detail": "untrusted (latest)"},
    ]
    assert all(type(row["count"]) is int for row in rows)
    later = await first.connection_problems(ts(3600), 2)  # the hours from `since` on, limited
    assert [(r["client"], r["kind"], r["count"]) for r in later] == [
        ("10.0.0.8", "wrong_key", 2), ("10.0.0.7", "context_shortened", 1)]
    assert await first.prune_connection_problems(ts(3600)) == 1
    assert [r["count"] for r in await first.connection_problems(ts(0), 100)
            if r["kind"] == "tls_failure"] == [6]
    assert await first.connection_problems(ts(7200), 100) == []


# -- console sessions ---------------------------------------------------------------------------

def session(n: int, expires: str) -> ConsoleSession:
    return ConsoleSession(token_hash=bytes([n]) * 32, actor=f"person-{n}", created_at=ts(),
                          expires_at=expires)


async def test_sessions_expire_are_bounded_and_can_be_deleted(store):
    await store.create_session(session(1, ts(60)), keep=3)
    found = await store.get_session(bytes([1]) * 32, ts(59))
    assert found is not None and found.actor == "person-1"
    assert await store.get_session(bytes([1]) * 32, ts(60)) is None
    assert await store.get_session(bytes([9]) * 32, ts()) is None
    for n in range(2, 6):
        await store.create_session(session(n, ts(100 + n)), keep=3)
    # bounded: the sessions that expire first went
    assert [await store.get_session(bytes([n]) * 32, ts()) is not None
            for n in range(1, 6)] == [False, False, True, True, True]
    await store.delete_session(bytes([5]) * 32)
    assert await store.get_session(bytes([5]) * 32, ts()) is None
    assert await store.prune_sessions(ts(103.5)) == 1  # session 3
    assert await store.get_session(bytes([4]) * 32, ts()) is not None


async def test_sessions_survive_a_reopen(open_store):
    first = await open_store()
    await first.create_session(session(7, ts(3600)), keep=10)
    await first.close()
    second = await open_store()
    assert (await second.get_session(bytes([7]) * 32, ts())).actor == "person-7"


async def test_a_session_keeps_the_role_and_key_it_was_opened_with(store):
    await store.create_session(replace(session(1, ts(60)), role="viewer", key_id="k1"), keep=3)
    found = await store.get_session(bytes([1]) * 32, ts())
    assert (found.actor, found.role, found.key_id) == ("person-1", "viewer", "k1")
    await store.create_session(session(2, ts(60)), keep=3)
    assert (await store.get_session(bytes([2]) * 32, ts())).role == "admin"


# -- background jobs ------------------------------------------------------------------------

async def test_a_lone_process_runs_every_job_and_keeps_running_it(store):
    for _ in range(2):
        for job in ("stale-agents", "forward"):
            async with store.job_lock(job) as held:
                assert held


def job_run(job_id: str, outcome: str, instance: str = "host-a:1", at: float = 0) -> JobRun:
    return JobRun(job_id, instance, ts(at), outcome, f"{outcome} run", 0.25)


async def test_job_runs_are_counted_with_failures_in_a_row(open_store):
    store = await open_store()
    assert await store.job_records() == {}
    for n, outcome in enumerate(["ok", "failed", "failed", "skipped"]):
        await store.record_job_run(job_run("forward", outcome, at=n))
    await store.record_job_run(job_run("retention", "ok", instance="host-b:2"))
    await store.close()
    records = await (await open_store()).job_records()
    assert set(records) == {"forward", "retention"}
    forward = records["forward"]
    assert forward.last == job_run("forward", "skipped", at=3)
    assert (forward.runs, forward.failures, forward.consecutive_failures) == (4, 2, 2)
    assert records["retention"].last.instance == "host-b:2"
    store = await open_store()
    await store.record_job_run(job_run("forward", "ok", at=4))
    forward = (await store.job_records())["forward"]
    assert (forward.runs, forward.failures, forward.consecutive_failures) == (5, 2, 0)


# -- keys ------------------------------------------------------------------------------------------

def agent_key(n: int, host: str, by: str = "alice") -> NewAgentKey:
    return NewAgentKey(key_id=f"key-{n}", key_hash=bytes([n]) * 32, host_id=host, created_by=by)


async def test_agent_keys_are_created_rotated_and_revoked_moving_the_version(store, clock):
    clock.ns = BASE_NS
    version = await store.keys_version()
    created = await store.create_agent_keys([agent_key(1, "mac-a"), agent_key(2, "mac-b")])
    assert [(k.key_id, k.host_id, k.created_by, k.created_at) for k in created] == [
        ("key-1", "mac-a", "alice", ts()), ("key-2", "mac-b", "alice", ts())]
    assert (after_create := await store.keys_version()) != version
    agents, people = await store.valid_keys(ts())
    assert {(k.key_id, k.key_hash, k.host_id) for k in agents} == {
        ("key-1", bytes([1]) * 32, "mac-a"), ("key-2", bytes([2]) * 32, "mac-b")}
    assert people == []

    clock.advance(10)
    rotated = await store.rotate_agent_key("key-1", agent_key(3, "ignored", by="bob"), ts(3600))
    assert (rotated.key_id, rotated.host_id, rotated.replaces, rotated.created_by) == (
        "key-3", "mac-a", "key-1", "bob")
    assert (after_rotate := await store.keys_version()) != after_create
    valid = {k.key_id: k for k in (await store.valid_keys(ts(10)))[0]}
    assert set(valid) == {"key-1", "key-2", "key-3"}
    assert valid["key-1"].expires_at == ts(3600)
    # a second rotation cannot stretch the old key's grace period
    again = await store.rotate_agent_key("key-1", agent_key(4, "mac-a"), ts(7200))
    assert again.replaces == "key-1"
    assert {k.key_id: k for k in (await store.valid_keys(ts(10)))[0]}["key-1"].expires_at \
        == ts(3600)
    assert {k.key_id for k in (await store.valid_keys(ts(3600)))[0]} == {"key-2", "key-3",
                                                                          "key-4"}

    revoked = await store.revoke_agent_key("key-2", "carol")
    assert (revoked.revoked_at, revoked.revoked_by) == (ts(10), "carol")
    assert (after_revoke := await store.keys_version()) not in (after_create, after_rotate)
    assert "key-2" not in {k.key_id for k in (await store.valid_keys(ts(10)))[0]}
    clock.advance(5)
    again = await store.revoke_agent_key("key-2", "dave")  # revoked stays as it was
    assert (again.revoked_at, again.revoked_by) == (ts(10), "carol")
    assert await store.keys_version() == after_revoke
    assert await store.revoke_agent_key("nope", "dave") is None
    assert await store.rotate_agent_key("key-2", agent_key(5, "mac-b"), ts(99)) is None
    assert await store.rotate_agent_key("nope", agent_key(5, "mac-b"), ts(99)) is None
    # expired: no rotation either
    clock.advance(3600)
    assert await store.rotate_agent_key("key-1", agent_key(5, "mac-a"), ts(99_999)) is None

    listed = await store.list_agent_keys()
    assert [k.key_id for k in listed] == ["key-3", "key-4", "key-1", "key-2"]  # newest first
    assert [k.key_id for k in await store.list_agent_keys("mac-a")] == ["key-3", "key-4",
                                                                         "key-1"]
    assert [k.key_id for k in await store.list_agent_keys(limit=2)] == ["key-3", "key-4"]


async def test_key_use_keeps_the_latest_without_moving_the_version(store):
    await store.create_agent_keys([agent_key(1, "mac-a"), agent_key(2, "mac-b")])
    version = await store.keys_version()
    await store.record_key_use([KeyUse("key-1", ts(20), "10.0.0.7"),
                                KeyUse("key-2", ts(5), "10.0.0.8"), KeyUse("ghost", ts(5), None)])
    await store.record_key_use([KeyUse("key-1", ts(10), "10.0.0.99")])  # older: no change
    used = {k.key_id: (k.last_used_at, k.last_used_from) for k in await store.list_agent_keys()}
    assert used == {"key-1": (ts(20), "10.0.0.7"), "key-2": (ts(5), "10.0.0.8")}
    assert await store.keys_version() == version


async def test_a_person_has_one_key_and_revoking_it_ends_their_sessions(store, clock):
    clock.ns = BASE_NS
    alice = await store.create_analyst_key(NewAnalystKey("p1", b"a" * 32, "alice", "analyst",
                                                         "admin"))
    assert (alice.name, alice.role, alice.created_by, alice.created_at) == (
        "alice", "analyst", "admin", ts())
    await store.create_analyst_key(NewAnalystKey("p2", b"b" * 32, "bob", "viewer", "admin"))
    with pytest.raises(NameTaken):
        await store.create_analyst_key(NewAnalystKey("p3", b"c" * 32, "alice", "viewer", "x"))
    _, people = await store.valid_keys(ts())
    assert {(k.key_id, k.name, k.role) for k in people} == {("p1", "alice", "analyst"),
                                                            ("p2", "bob", "viewer")}
    await store.create_session(replace(session(1, ts(60)), key_id="p1"), keep=10)
    await store.create_session(replace(session(2, ts(60)), key_id="p2"), keep=10)
    version = await store.keys_version()
    revoked = await store.revoke_analyst_key("p1", "admin")
    assert (revoked.revoked_at, revoked.revoked_by) == (ts(), "admin")
    assert await store.keys_version() != version
    assert await store.get_session(bytes([1]) * 32, ts()) is None
    assert await store.get_session(bytes([2]) * 32, ts()) is not None
    assert {k.name for k in (await store.valid_keys(ts()))[1]} == {"bob"}
    assert await store.revoke_analyst_key("nope", "admin") is None
    # the name is free again once its key is revoked
    await store.create_analyst_key(NewAnalystKey("p4", b"d" * 32, "alice", "viewer", "admin"))
    listed = {k.key_id: (k.name, k.revoked_at is None) for k in await store.list_analyst_keys()}
    assert listed == {"p1": ("alice", False), "p2": ("bob", True), "p4": ("alice", True)}


async def test_a_key_change_is_seen_by_another_store_on_the_same_database(open_store):
    first, second = await open_store(), await open_store()
    await first.create_agent_keys([agent_key(1, "mac-a")])
    version = await second.keys_version()
    await first.revoke_agent_key("key-1", "alice")
    assert await second.keys_version() != version
    assert (await second.valid_keys(ts()))[0] == []
    await first.close()
    third = await open_store()
    (stored,) = await third.list_agent_keys()
    assert (stored.key_id, stored.revoked_by) == ("key-1", "alice")


# -- failures -------------------------------------------------------------------------------------

async def test_a_closed_store_answers_store_unavailable(store):
    await store.insert_signals([signal("x")])
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.insert_signals([signal("y")])
    with pytest.raises(StoreUnavailable):
        await store.list_signals(SignalFilter())
    with pytest.raises(StoreUnavailable):
        await store.get_signal("x")
    with pytest.raises(StoreUnavailable):
        await store.check_writable()


async def test_health_and_size(store):
    await store.check_writable()
    before = await store.size_bytes()
    await store.insert_signals([signal(f"z{n}", context={"blob": "x" * 5000})
                                for n in range(50)])
    assert await store.size_bytes() > before > 0


# -- silences ---------------------------------------------------------------------------------

def new_silence(ends_in: float = 3600, *, comment: str = "noisy build script",
                **matchers: str) -> NewSilence:
    return NewSilence(Matchers(**matchers), comment, "alice",
                      timeutil.format_utc(BASE_NS + int(ends_in * NS)))


async def test_silences_are_kept_listed_and_expired_for_the_record(store, clock):
    clock.ns = BASE_NS
    version = await store.silences_version()
    silence, resolved = await store.create_silence(
        new_silence(rule_id="SM-008", host_id="build-mac"), resolve_matching=False)
    assert resolved == 0
    assert (silence.matchers.rule_id, silence.created_by, silence.created_at) == (
        "SM-008", "alice", ts())
    assert silence.active(ts(1)) and not silence.active(ts(3600))
    assert await store.silences_version() != version
    other, _ = await store.create_silence(new_silence(60, title="curl * | sh"), False)
    assert [s.id for s in await store.list_silences()] == [other.id, silence.id]
    assert [s.id for s in await store.list_silences(active_at=ts(120))] == [silence.id]

    version = await store.silences_version()
    clock.advance(10)
    expired = await store.expire_silence(silence.id, "bob")
    assert (expired.expired_at, expired.expired_by, expired.end) == (ts(10), "bob", ts(10))
    assert not expired.active(ts(10)) and expired.active(ts(9))
    assert await store.silences_version() != version
    # expiring again changes nothing; an unknown silence is None
    version = await store.silences_version()
    assert (await store.expire_silence(silence.id, "carol")).expired_by == "bob"
    assert await store.silences_version() == version
    assert await store.expire_silence(silence.id + 100, "bob") is None
    assert await store.list_silences(active_at=ts(60)) == []
    assert len(await store.list_silences()) == 2  # nothing is deleted


async def test_silenced_signals_are_stored_but_kept_out_of_the_default_views(store):
    silence, _ = await store.create_silence(new_silence(rule_id="SM-008"), False)
    await store.insert_signals([
        replace(signal("quiet-1", rule="SM-008", severity="critical"), silence_id=silence.id),
        replace(signal("quiet-2", rule="SM-008", severity="low"), silence_id=silence.id),
        signal("loud", rule="SM-008", severity="critical")])
    assert await walk(store, SignalFilter()) == ["loud"]
    assert set(await walk(store, SignalFilter(silenced=True))) == {"quiet-1", "quiet-2"}
    assert len(await walk(store, SignalFilter(silenced=None))) == 3
    detail = await store.get_signal("quiet-1")
    assert detail["silence_id"] == silence.id and detail["silence"].id == silence.id
    assert detail["silence"].comment == "noisy build script"
    loud = await store.get_signal("loud")
    assert (loud["silence_id"], loud["silence"]) == (None, None)
    stats = await store.stats()
    assert stats["open_by_severity"] == {"critical": 1}
    assert stats["silenced_open"] == 2
    assert stats["by_status"] == {"open": 3}
    await store.set_status(["quiet-1"], "resolved", None, "alice")
    assert (await store.stats())["silenced_open"] == 1
    assert (await store.list_silences())[0].signals == 2
    assert await store.forward_backlog(("critical", "low")) == 3
    assert await store.forward_backlog(("critical", "low"), include_silenced=False) == 1


async def test_a_silence_can_resolve_the_open_signals_it_matches(store):
    await store.insert_signals([
        signal("m1", rule="SM-008", host="build-mac", title="curl https://x | sh"),
        signal("m2", rule="SM-008", host="build-mac", title="curl http://y.example | sh"),
        signal("m3", rule="SM-008", host="build-mac", title="curl https://x | bash"),
        signal("m4", rule="SM-008", host="other-mac", title="curl https://x | sh"),
        signal("m5", rule="SM-008", host="build-mac", title="curl https://x | sh"),
        signal("m6", rule="SM-008", host="build-mac", title="CURL https://x | sh")])
    await store.set_status(["m5"], "acknowledged", None, "bob")
    matchers = Matchers(rule_id="SM-008", host_id="build-mac", title="curl * | sh")
    assert await store.count_open_matching(matchers) == 2
    assert await store.count_open_matching(Matchers(title="curl https://x | sh")) == 2
    assert await store.count_open_matching(Matchers(severity="high")) == 5
    silence, resolved = await store.create_silence(
        new_silence(rule_id="SM-008", host_id="build-mac", title="curl * | sh"),
        resolve_matching=True)
    assert resolved == 2
    statuses = {s: (await store.get_signal(s))["status"] for s in ("m1", "m2", "m3", "m5")}
    assert statuses == {"m1": "resolved", "m2": "resolved", "m3": "open",
                        "m5": "acknowledged"}
    (entry,) = (await store.get_signal("m1"))["history"]
    assert (entry["to_status"], entry["actor"]) == ("resolved", "alice")
    assert entry["note"] == f"resolved with silence #{silence.id}: noisy build script"
    assert await store.count_open_matching(matchers) == 0


# -- stale agents and maintenance windows --------------------------------------------------------

async def test_a_held_alert_is_raised_when_the_builder_gives_one(store, clock):
    await beat(store, clock, "mac-1", ts())
    await beat(store, clock, "mac-2", ts())
    clock.advance(200)
    cutoff = timeutil.format_utc(clock() - 180 * NS)
    in_maintenance = {"mac-1"}

    def builder(agent, now):
        return None if agent.agent_id in in_maintenance else alert_builder()(agent, now)

    assert sorted(await store.mark_stale_agents(cutoff, builder)) == ["mac-1", "mac-2"]
    alerts = await walk(store, SignalFilter(rule_id=STALE_RULE_ID))
    assert len(alerts) == 1  # mac-2's
    agents = {a["agent_id"]: a["status"] for a in await store.list_agents(AgentFilter())}
    assert agents == {"mac-1": "stale", "mac-2": "stale"}
    assert await store.mark_stale_agents(cutoff, builder) == []  # still held
    in_maintenance.clear()
    clock.advance(60)
    assert await store.mark_stale_agents(cutoff, builder) == ["mac-1"]
    assert len(await walk(store, SignalFilter(rule_id=STALE_RULE_ID))) == 2
    assert await store.mark_stale_agents(cutoff, builder) == []  # one alert per silence

    # a heartbeat ends a hold: no alert for that silence once the agent is back
    await beat(store, clock, "mac-3", ts(260))
    clock.advance(200)
    in_maintenance.add("mac-3")
    cutoff = timeutil.format_utc(clock() - 180 * NS)
    assert await store.mark_stale_agents(cutoff, builder) == ["mac-3"]
    await beat(store, clock, "mac-3", ts(460))
    in_maintenance.clear()
    assert await store.mark_stale_agents(cutoff, builder) == []
    assert len(await walk(store, SignalFilter(rule_id=STALE_RULE_ID, status=None))) == 2


async def test_held_and_silenced_agents_are_left_out_of_the_alert_for_many(store, clock):
    clock.ns = BASE_NS
    office = [f"office-{n}" for n in range(4)]
    repair = ["repair-0", "repair-1"]
    for agent_id in [*office, *repair, "fleet-0"]:
        await beat(store, clock, agent_id, ts())
    for host in repair:
        await store.create_silence(new_silence(86_400, host_id=host, rule_id=STALE_RULE_ID),
                                   resolve_matching=False)
    quiet, _ = await store.create_silence(
        new_silence(rule_id=STALE_RULE_ID, title="Agent fleet-*"), resolve_matching=False)
    clock.advance(200)
    cutoff = timeutil.format_utc(clock() - 180 * NS)

    async def check() -> list[str]:
        now = timeutil.format_utc(clock())
        silences = await store.list_silences(active_at=now)
        return await store.mark_stale_agents(
            cutoff,
            functools.partial(stale_alert_unless_held, silences=silences,
                              threshold_seconds=180.0),
            functools.partial(stale_summary_marked, silences=silences, threshold_seconds=180.0,
                              over=3))

    # Seven silent at once, but only the four office Macs are an outage: the two in repair
    # are expected to be silent, and fleet-0's alert is silenced on its own.
    assert sorted(await check()) == sorted([*office, *repair, "fleet-0"])
    (summary,) = (await store.list_signals(SignalFilter(rule_id=STALE_MANY_RULE_ID))).signals
    context = orjson.loads(orjson.dumps(summary["context"]))
    assert (context["count"], context["agent_ids"]) == (4, office)
    assert summary["silence_id"] is None
    alerts = (await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID, status=None,
                                                    silenced=None))).signals
    assert [(a["host_id"], a["silence_id"]) for a in alerts] == [("fleet-0", quiet.id)]
    stale = {a["agent_id"] for a in await store.list_agents(AgentFilter(status="stale"))}
    assert stale == {*office, *repair, "fleet-0"}

    # The windows end while the Macs are still silent: their alerts come now, and two alerts
    # are not many.
    clock.advance(86_400)
    assert sorted(await check()) == repair
    alerts = (await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID, status=None,
                                                    silenced=None))).signals
    assert sorted((a["host_id"], a["silence_id"]) for a in alerts) == [
        ("fleet-0", quiet.id), ("repair-0", None), ("repair-1", None)]
    assert len((await store.list_signals(SignalFilter(rule_id=STALE_MANY_RULE_ID))).signals) == 1
    assert await check() == []


async def test_the_alert_for_many_is_silenced_like_any_signal(store, clock):
    clock.ns = BASE_NS
    for n in range(5):
        await beat(store, clock, f"office-{n}", ts())
    quiet, _ = await store.create_silence(new_silence(rule_id=STALE_MANY_RULE_ID),
                                          resolve_matching=False)
    clock.advance(200)
    silences = await store.list_silences(active_at=timeutil.format_utc(clock()))
    await store.mark_stale_agents(
        timeutil.format_utc(clock() - 180 * NS),
        functools.partial(stale_alert_unless_held, silences=silences, threshold_seconds=180.0),
        functools.partial(stale_summary_marked, silences=silences, threshold_seconds=180.0,
                          over=3))
    assert (await store.list_signals(SignalFilter(rule_id=STALE_MANY_RULE_ID))).signals == []
    (summary,) = (await store.list_signals(SignalFilter(rule_id=STALE_MANY_RULE_ID,
                                                        silenced=True))).signals
    assert summary["silence_id"] == quiet.id
    assert (await store.list_signals(SignalFilter(rule_id=STALE_RULE_ID, silenced=None))
            ).signals == []


# -- groups of repeats ----------------------------------------------------------------------------

RANK = {severity: rank for rank, severity in enumerate(("info", "low", "medium", "high",
                                                        "critical"))}


async def all_groups(store: Store, query: SignalFilter) -> list[dict]:
    seen: list[dict] = []
    cursor = query.cursor
    for _ in range(1000):
        page = await store.signal_groups(replace(query, cursor=cursor))
        assert len(page.groups) <= query.limit
        seen += page.groups
        if (cursor := page.next_cursor) is None:
            return seen
    raise AssertionError("paging did not end")


async def expected_groups(store: Store, query: SignalFilter) -> list[dict]:
    """The groups worked out from the signals themselves, one by one."""
    groups: dict[tuple[str, str], dict] = {}
    for signal_id in await walk(store, replace(query, limit=1000)):
        s = await store.get_signal(signal_id)
        g = groups.setdefault((s["rule_id"], s["host_id"]), {
            "rule_id": s["rule_id"], "host_id": s["host_id"], "count": 0, "first_ts": s["ts"],
            "last_ts": s["ts"], "severity": s["severity"], "by_status": {}, "silenced": 0,
            "sample_signal_id": signal_id})
        g["count"] += 1
        g["by_status"][s["status"]] = g["by_status"].get(s["status"], 0) + 1
        g["silenced"] += s["silence_id"] is not None
        g["first_ts"] = min(g["first_ts"], s["ts"])
        if RANK[s["severity"]] > RANK[g["severity"]]:
            g["severity"] = s["severity"]
    return sorted(groups.values(), key=lambda g: (g["last_ts"], g["rule_id"], g["host_id"]),
                  reverse=True)


def comparable(groups: list[dict]) -> list[dict]:
    # Which signal is the sample only matters when several share the newest instant.
    return [{k: v for k, v in g.items() if k != "sample_signal_id"} for g in groups]


async def test_groups_count_repeats_across_status_changes_paging_and_pruning(store, clock):
    clock.ns = BASE_NS
    silence, _ = await store.create_silence(new_silence(rule_id="R-1", host_id="h-1"), False)
    signals = []
    for n in range(60):
        rule, host = f"R-{n % 4}", f"h-{n % 3}"
        s = signal(f"g{n:02d}", at=ts(n * 7 % 50, ns=n), rule=rule, host=host,
                   severity=("low", "high", "medium", "critical", "info")[n % 5],
                   title=f"thing {n % 3}")
        signals.append(replace(s, silence_id=silence.id) if (rule, host) == ("R-1", "h-1")
                       and n % 2 else s)
    await store.insert_signals(signals)
    queries = [SignalFilter(status=None, silenced=None, limit=2), SignalFilter(limit=3),
               SignalFilter(status="resolved", limit=1), SignalFilter(silenced=True),
               SignalFilter(status=None, host_id="h-2", limit=2),
               SignalFilter(status=None, rule_id="R-3", silenced=None, limit=1),
               SignalFilter(severities=("critical", "low"), limit=2),
               SignalFilter(status=None, since=ts(10), until=ts(40), limit=2),
               SignalFilter(status=None, search="THING 1", silenced=None, limit=2),
               SignalFilter(search="thing", limit=2), SignalFilter(search="r-2", limit=1),
               SignalFilter(search="nothing like it")]

    async def check() -> None:
        for query in queries:
            got, want = await all_groups(store, query), await expected_groups(store, query)
            assert comparable(got) == comparable(want), query
            for group in got:
                sample = await store.get_signal(group["sample_signal_id"])
                assert (sample["rule_id"], sample["host_id"], sample["ts"]) == (
                    group["rule_id"], group["host_id"], group["last_ts"])

    await check()
    # triage moves signals between statuses, the newest and oldest of a group included
    await store.set_status(["g00", "g12", "g24", "g59", "g58", "g57"], "resolved", None, "a")
    await store.set_status(["g01", "g13"], "acknowledged", None, "a")
    await check()
    # a whole group resolved, then reopened in part
    group = await walk(store, SignalFilter(rule_id="R-2", host_id="h-2", status=None))
    await store.set_status(group, "resolved", None, "a")
    await store.set_status(group[:2], "open", None, "a")
    await check()
    # pruning removes the oldest resolved ones
    clock.advance(86400 * 400)
    assert await store.prune_resolved_signals(ts(20), 5) == 5
    await check()
    everything = await all_groups(store, SignalFilter(status=None, silenced=None, limit=100))
    assert sum(g["count"] for g in everything) == 55


async def test_group_pages_stay_stable_while_signals_arrive(store):
    await store.insert_signals([signal(f"p{n}", at=ts(n), host=f"h-{n}") for n in range(10)])
    first = await store.signal_groups(SignalFilter(limit=4))
    assert [g["host_id"] for g in first.groups] == ["h-9", "h-8", "h-7", "h-6"]
    # a group already shown gets a newer signal, a new group appears: neither is repeated
    await store.insert_signals([signal("p9b", at=ts(100), host="h-2"),
                                signal("new", at=ts(100), host="h-new")])
    rest = await all_groups(store, SignalFilter(limit=4, cursor=first.next_cursor))
    assert [g["host_id"] for g in rest] == ["h-5", "h-4", "h-3", "h-1", "h-0"]
    with pytest.raises(InvalidCursor):
        page = await store.list_signals(SignalFilter(limit=1))
        await store.signal_groups(SignalFilter(cursor=page.next_cursor))


async def test_groups_tied_at_one_instant_page_in_one_order(store):
    await store.insert_signals([
        signal(f"tie-{n}", at=ts(50 if n % 2 else 20), rule=f"R-{n % 3}", host=f"h-{n % 5}",
               severity=("low", "high")[n % 2]) for n in range(40)])
    await store.set_status([f"tie-{n}" for n in range(0, 40, 3)], "acknowledged", None, "a")
    # the greatest group at the newest instant has only acknowledged signals there
    await store.insert_signals([signal("tie-z", at=ts(50), rule="Z-rule", host="h-9"),
                                signal("tie-a", at=ts(50), rule="A-rule", host="h-1")])
    await store.set_status(["tie-z"], "acknowledged", None, "a")
    for query in (SignalFilter(status=None, limit=1), SignalFilter(status=None, limit=4),
                  SignalFilter(status=None, since=ts(0), limit=1),
                  SignalFilter(status=None, since=ts(0), limit=3),
                  SignalFilter(since=ts(0), until=ts(60), limit=2)):
        assert comparable(await all_groups(store, query)) == comparable(
            await expected_groups(store, query)), query


async def test_triage_by_filter_changes_a_group_in_chunks_up_to_a_limit(store):
    await store.insert_signals([signal(f"t{n:04d}", at=ts(n), rule="R-big", host="h-big")
                                for n in range(1200)]
                               + [signal("bystander", rule="R-big", host="h-other")])
    await store.set_status(["t0000"], "resolved", None, "bob")
    group = SignalFilter(status=None, rule_id="R-big", host_id="h-big", silenced=None)
    assert await store.set_status_matching(group, "resolved", "build noise", "alice",
                                           limit=1000) == (1000, True)
    assert await store.set_status_matching(group, "resolved", "build noise", "alice",
                                           limit=1000) == (199, False)
    assert await walk(store, SignalFilter(status="open")) == ["bystander"]
    history = (await store.get_signal("t0500"))["history"]
    assert [(h["to_status"], h["note"], h["actor"]) for h in history] == [
        ("resolved", "build noise", "alice")]
    assert (await store.get_signal("t0000"))["history"][-1]["actor"] == "bob"
    assert await store.set_status_matching(group, "resolved", None, "alice",
                                           limit=10) == (0, False)
    # a filter narrows it: only the acknowledged ones of the group are reopened
    await store.set_status(["t0001", "t0002"], "acknowledged", None, "bob")
    acked = replace(group, status="acknowledged")
    assert await store.set_status_matching(acked, "open", None, "alice", 10) == (2, False)
    assert sorted(await walk(store, SignalFilter(status="open"))) == [
        "bystander", "t0001", "t0002"]
