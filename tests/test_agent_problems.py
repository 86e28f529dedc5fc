"""Failures an operator can see (issue 13): wrong agent keys warned about and counted, the
connection problems counted per address and hour and written in batches, GET /agents/problems;
and what the real agent sends stored alike on both engines (NUL, oversized context, integers
beyond 64 bits, Go's zero time)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from santamon.api.auth.limiter import WarningLimiter
from santamon.app import create_app
from santamon.config import Settings
from santamon.domain.problems import OTHER_CLIENTS, TLS_REASONS, hour_of, tls_failure
from santamon.jobs.problems import ConnectionProblems
from santamon.store import StoreUnavailable
from santamon.store.sqlite import SQLiteStore

from .helpers import (
    AGENT,
    AGENT_KEY,
    ANALYST,
    ANALYST_KEY,
    FakeClock,
    add_keys,
    make_signal,
    sample,
    sample_bytes,
)

WRONG = {"X-API-Key": "revoked-agent-key-0123456789"}


async def metric(client, name: str, **labels: str) -> float:
    text = await (await client.get("/metrics", headers=ANALYST)).text()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


async def problems(client, **query: str) -> list[dict]:
    response = await client.get("/agents/problems", params=query, headers=ANALYST)
    assert response.status == 200, await response.text()
    return (await response.json())["problems"]


def warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "santamon.api.problems" and r.levelno == logging.WARNING]


# -- wrong keys -------------------------------------------------------------------------------

async def test_a_wrong_key_is_warned_about_once_per_address_with_the_host_it_claimed(
        client, caplog):
    for _ in range(5):
        response = await client.post("/ingest", data=sample_bytes("signal-file-access"),
                                     headers=WRONG)
        assert response.status == 401
    beat = await client.post("/agents/heartbeat", json=sample("heartbeat"))  # no key at all
    assert beat.status == 401

    (invalid, missing) = warnings(caplog)
    assert invalid.getMessage() == "agent request refused: a wrong or revoked key"
    assert invalid.fields == {"client": "127.0.0.1", "path": "/ingest",
                              "claimed_host_id": "mbp-alice"}
    assert missing.getMessage() == "agent request refused: no key"
    assert missing.fields["claimed_agent_id"] == "mbp-alice"
    assert await metric(client, "santamon_agent_key_failures_total", reason="invalid") == 5
    assert await metric(client, "santamon_agent_key_failures_total", reason="missing") == 1
    (wrong,) = await problems(client)
    assert (wrong["client"], wrong["kind"], wrong["count"]) == ("127.0.0.1", "wrong_key", 6)
    assert wrong["detail"] == ("POST /agents/heartbeat with no key "
                               "(claimed agent_id mbp-alice)")


async def test_a_throttled_address_is_counted_without_reading_bodies(client, caplog):
    statuses = [(await client.post("/agents/heartbeat", json=sample("heartbeat"),
                                   headers=WRONG)).status for _ in range(22)]
    assert statuses.count(401) == 20 and statuses[-2:] == [429, 429]
    assert len(warnings(caplog)) == 1
    assert await metric(client, "santamon_agent_key_failures_total",
                        reason="rate_limited") == 2
    (wrong,) = await problems(client)
    assert wrong["count"] == 22
    assert wrong["detail"] == ("POST /agents/heartbeat with a failed key, throttled "
                               "(no host id read)")
    ok = await client.post("/agents/heartbeat", json=sample("heartbeat"), headers=AGENT)
    assert ok.status == 200  # a valid key from the same address still works


async def test_an_analyst_route_refusing_a_key_is_no_agent_problem(client, caplog):
    assert (await client.get("/signals", headers=WRONG)).status == 401
    assert warnings(caplog) == [] and await problems(client) == []


# -- GET /agents/problems ---------------------------------------------------------------------

async def test_the_problems_of_the_last_hours_for_readers_only(aiohttp_client, settings):
    keys = await add_keys(settings.db_path)
    clock = FakeClock()
    client = await aiohttp_client(create_app(settings, clock=clock))
    misuse = await client.post("/agents/heartbeat", headers={"X-API-Key": keys.bound},
                               json={**sample("heartbeat"), "agent_id": "mbp-bob"})
    assert misuse.status == 403
    clock.advance(3 * 3600)
    assert (await client.post("/ingest", json=make_signal(
        "big", context={"blob": "x" * 150_000}), headers=AGENT)).status == 200
    assert await metric(client, "santamon_ingest_shortened_total", field="context") == 1

    recent = await problems(client, hours="1")
    assert [(p["kind"], p["count"]) for p in recent] == [("context_shortened", 1)]
    assert re.fullmatch(r"signal big of mbp-alice \(SM-002\): context of 150,011 bytes "
                        r"stored as 99,9\d\d", recent[0]["detail"])
    both = await problems(client)
    assert [p["kind"] for p in both] == ["context_shortened", "key_misuse"]
    assert both[1]["detail"] == "the key of mbp-alice was used for mbp-bob"

    body = await (await client.get("/agents/problems?hours=4", headers=ANALYST)).json()
    assert body["since"] == hour_of(clock() - 3 * 3600 * 1_000_000_000)
    for bad in ("0", "169", "x"):
        response = await client.get(f"/agents/problems?hours={bad}", headers=ANALYST)
        assert response.status == 422
    assert (await client.get("/agents/problems", headers=AGENT)).status == 403
    viewer = await client.get("/agents/problems", headers={"X-API-Key": keys.viewer})
    assert viewer.status == 200


# -- counting and writing ---------------------------------------------------------------------

async def test_many_failures_are_one_small_write_per_flush(tmp_path: Path):
    commits: list[int] = []
    store = SQLiteStore(tmp_path / "s.db", on_commit=lambda ops, _: commits.append(ops))
    await store.open()
    clock = FakeClock()
    recorder = ConnectionProblems(store, clock, max_clients_per_hour=3)
    try:
        for n in range(10_000):  # a flood of bad handshakes from five addresses
            recorder.record(f"10.0.0.{n % 5}", "tls_failure", f"failure {n}")
        recorder.record(None, "wrong_key", "no address")
        assert commits == []  # nothing is written per failure
        await recorder.flush()
        assert commits == [1]
        rows = await store.connection_problems(hour_of(clock()), 100)
        counts = {(row["client"], row["kind"]): row["count"] for row in rows}
        # Three addresses an hour each get a row, the rest are counted together.
        assert counts == {("10.0.0.0", "tls_failure"): 2000, ("10.0.0.1", "tls_failure"): 2000,
                          ("10.0.0.2", "tls_failure"): 2000, (OTHER_CLIENTS, "tls_failure"): 4000,
                          (OTHER_CLIENTS, "wrong_key"): 1}
        assert {row["detail"] for row in rows if row["client"] == "10.0.0.0"} == {
            "failure 9995"}
        await recorder.flush()  # nothing new: nothing written
        assert commits == [1]
        clock.advance(3600)  # a new hour has room for other addresses again
        recorder.record("10.0.0.4", "tls_failure", "later")
        await recorder.stop()  # writes what is left
        assert commits == [1, 1]
        assert (await store.connection_problems(hour_of(clock()), 10))[0]["client"] == (
            "10.0.0.4")
    finally:
        await store.close()


async def test_counts_wait_for_a_store_that_cannot_take_them(tmp_path: Path):
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    recorder = ConnectionProblems(store)
    recorder.record("10.0.0.9", "tls_failure", "untrusted")
    await store.close()
    with pytest.raises(StoreUnavailable):
        await recorder.flush()
    with pytest.raises(StoreUnavailable):  # kept, and offered again
        await recorder.flush()
    await recorder.stop()  # gives up quietly at shutdown


def test_warnings_once_per_period_and_at_most_so_many_a_minute():
    now = [0.0]
    limiter = WarningLimiter(period=300, per_minute=3, max_keys=2, clock=lambda: now[0])
    assert limiter.allow("a") == 0
    assert [limiter.allow("a") for _ in range(4)] == [None] * 4
    now[0] = 301
    assert limiter.allow("a") == 4  # logged again, saying four were left out
    assert (limiter.allow("b"), limiter.allow("c")) == (0, 0)
    assert limiter.allow("d") is None  # the minute's three are spent
    now[0] = 400
    assert limiter.allow("d") == 1
    assert limiter.allow("a") == 0  # forgotten (two keys at most): as if new


def test_tls_failures_are_named_for_what_the_operator_can_do():
    assert tls_failure("TLSV1_ALERT_UNKNOWN_CA")[0] == "untrusted_certificate"
    assert tls_failure("SSLV3_ALERT_BAD_CERTIFICATE")[0] == "untrusted_certificate"
    assert tls_failure("HTTP_REQUEST") == ("http_on_https",
                                           "plain HTTP sent to the HTTPS port (use https://)")
    assert tls_failure("UNSUPPORTED_PROTOCOL")[0] == "protocol_version"
    assert tls_failure("SOMETHING_NEW") == ("other", "TLS handshake failed (something_new)")
    assert tls_failure(None)[0] == "other"
    assert {label for label, _ in TLS_REASONS.values()} == {
        "untrusted_certificate", "http_on_https", "protocol_version", "no_shared_cipher",
        "not_tls"}


# -- what the agent sends, on both engines ----------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(api_key=[AGENT_KEY], admin_key=ANALYST_KEY, db_path=tmp_path / "s.db",
                    database_url=url)


async def test_what_the_agent_can_send_is_stored_alike_on_both_engines(aiohttp_client, engine):
    """NUL in free text (PostgreSQL cannot store it in text) becomes U+FFFD everywhere, and
    stays a JSON escape inside the context; an oversized SM-014 context, integers beyond 64
    bits and Go's zero time written west of UTC are stored too."""
    client = await aiohttp_client(create_app(engine))
    argv = ["/bin/bash", "-c", "A" * 60_000]
    sm014 = sample("signal-file-access")
    sm014["context"]["execution.args"] = argv
    sm014["context"]["process_tree"][0]["args"] = argv
    signals = [
        make_signal("nul", title="bad\x00title", rule_description="d\x00", tags=["t\x00"],
                    context={"args": ["a\x00b"]}),
        {**sm014, "signal_id": "sm014"},
        make_signal("wide", context={"inode": 18446744073709552000}),
        make_signal("zero", ts="0000-12-31T16:00:00-08:00"),
    ]
    for signal in signals:
        response = await client.post("/ingest", json=signal, headers=AGENT)
        assert response.status == 200, (signal["signal_id"], await response.text())
    beat = {**sample("heartbeat"), "version": "v0.3.1\x00", "os_version": "15\x00"}
    assert (await client.post("/agents/heartbeat", json=beat, headers=AGENT)).status == 200

    def get(signal_id: str):
        return client.get(f"/signals/{signal_id}", headers=ANALYST)

    nul = await (await get("nul")).json()
    assert (nul["title"], nul["rule_description"], nul["tags"]) == (
        "bad\ufffdtitle", "d\ufffd", ["t\ufffd"])
    assert nul["context"] == {"args": ["a\x00b"]} and nul["shortened"] == []
    sm = await (await get("sm014")).json()
    assert sm["shortened"] == ["context"] and sm["original_context_bytes"] > 120_000
    assert sm["context"]["execution.args"][2].endswith("bytes cut]")
    assert b'"inode":18446744073709552000' in await (await get("wide")).read()
    assert (await (await get("zero")).json())["ts"] == "0001-01-01T00:00:00.000000000Z"
    (agent,) = (await (await client.get("/agents", headers=ANALYST)).json())["heartbeats"]
    assert (agent["version"], agent["os_version"]) == ("v0.3.1\ufffd", "15\ufffd")
