import sqlite3

from santamon.api.state import LIVENESS

from .helpers import AGENT, ANALYST, make_signal, sample, sample_bytes


async def test_heartbeat_samples_and_agent_list(client):
    for name in ("heartbeat", "heartbeat-no-uptime"):
        response = await client.post("/agents/heartbeat", data=sample_bytes(name),
                                     headers=AGENT)
        assert response.status == 200
        assert await response.json() == {"status": "ok", "agent_id": sample(name)["agent_id"]}
    body = await (await client.get("/agents", headers=ANALYST)).json()
    assert body["count"] == 2
    agents = {a["agent_id"]: a for a in body["heartbeats"]}
    alice = agents["mbp-alice"]
    assert alice["uptime_seconds"] == 86400.5
    assert alice["timestamp"] == "2026-11-03T14:22:30.004417000Z"
    assert (alice["version"], alice["os_version"], alice["status"]) == ("v0.3.1", "15.4.1",
                                                                          "active")
    assert alice["stale_since"] is None
    assert alice["first_seen"] == alice["last_seen"] == alice["received_at"]
    assert agents["mini-build-02"]["uptime_seconds"] is None


async def test_repeated_heartbeats_update_one_agent(client, settings):
    beat = sample("heartbeat")
    for second in range(3):
        beat["timestamp"] = f"2026-11-03T14:22:3{second}Z"
        beat["uptime_seconds"] = 100 + second
        await client.post("/agents/heartbeat", json=beat, headers=AGENT)
        await client.app[LIVENESS].flush()  # each in a flush of its own, as 30 s apart
    agents = (await (await client.get("/agents", headers=ANALYST)).json())["heartbeats"]
    assert len(agents) == 1 and agents[0]["uptime_seconds"] == 102
    assert agents[0]["first_seen"] < agents[0]["last_seen"]
    with sqlite3.connect(settings.db_path) as conn:
        # the history keeps the first; the others came within its sample interval
        assert conn.execute("SELECT count(*) FROM heartbeats").fetchone() == (1,)


async def test_agent_filters_and_limits(client, settings):
    for i in range(3):
        await client.post("/agents/heartbeat", headers=AGENT, json={
            "agent_id": f"mac-{i}", "timestamp": "2026-11-03T14:22:30Z"})
    await client.app[LIVENESS].flush()  # acknowledged heartbeats reach the file within a second
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("UPDATE agents SET status = 'stale', stale_since = last_seen, "
                     "last_seen = '2026-01-01T00:00:00.000000000Z' WHERE agent_id = 'mac-1'")
    stale = (await (await client.get("/agents", params={"status": "stale"},
                                     headers=ANALYST)).json())["heartbeats"]
    assert [a["agent_id"] for a in stale] == ["mac-1"]
    listed = (await (await client.get("/agents", headers=ANALYST)).json())["heartbeats"]
    assert listed[0]["agent_id"] == "mac-1"  # silent agents first
    recent = await (await client.get("/agents", params={"since": "2026-06-01T00:00:00Z"},
                                     headers=ANALYST)).json()
    assert recent["count"] == 2
    limited = await (await client.get("/agents", params={"limit": "1"}, headers=ANALYST)).json()
    assert limited["count"] == 1
    for bad in ({"limit": "0"}, {"limit": "2001"}, {"status": "gone"}):
        assert (await client.get("/agents", params=bad, headers=ANALYST)).status == 422


async def test_invalid_heartbeats(client):
    for body in ({"agent_id": "x"}, {"agent_id": "", "timestamp": "2026-11-03T14:22:30Z"},
                 {"agent_id": "x", "timestamp": "soon"},
                 {"agent_id": "x", "timestamp": "2026-11-03T14:22:30Z", "uptime_seconds": -1}):
        assert (await client.post("/agents/heartbeat", json=body, headers=AGENT)).status == 422


async def test_stats(client):
    now = "2099-01-01T00:00:00Z"  # in the future, so within the last 24 h of anything
    await client.post("/ingest", headers=AGENT, json=[
        make_signal("s1", severity="critical", host_id="h1", rule_id="R1"),
        make_signal("s2", severity="critical", host_id="h1", rule_id="R2", ts=now),
        make_signal("s3", severity="low", host_id="h2", rule_id="R1")])
    await client.patch("/signals/s3/status", json={"status": "resolved"}, headers=ANALYST)
    await client.post("/agents/heartbeat", data=sample_bytes("heartbeat"), headers=AGENT)
    stats = await (await client.get("/stats", headers=ANALYST)).json()
    assert stats["total_signals"] == 3
    assert stats["last_24h"] == 1
    assert stats["by_severity"] == {"critical": 2, "low": 1}
    assert stats["by_status"] == {"open": 2, "resolved": 1}
    assert stats["by_host"] == {"h1": 2, "h2": 1}
    assert stats["top_rules"] == {"R1": 2, "R2": 1}
    assert stats["agents"] == {"active": 1, "stale": 0, "total": 1}


async def test_health_and_index(client):
    health = await (await client.get("/health")).json()
    assert health["status"] == "healthy" and health["timestamp"].endswith("Z")
    index = await (await client.get("/")).json()
    assert index["name"] == "Santamon Backend"
    assert "POST /ingest" in index["endpoints"]


async def test_health_is_503_when_the_database_cannot_be_written(client, settings):
    # Another connection holding the write lock makes every write wait, then fail.
    blocker = sqlite3.connect(settings.db_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        from santamon.api.views import ops
        old = ops.HEALTH_TIMEOUT_SECONDS
        ops.HEALTH_TIMEOUT_SECONDS = 0.5
        try:
            response = await client.get("/health")
        finally:
            ops.HEALTH_TIMEOUT_SECONDS = old
        assert response.status == 503
        assert (await response.json())["status"] == "unhealthy"
    finally:
        blocker.rollback()
        blocker.close()


async def test_stats_counters_match_the_rows_after_every_kind_of_write(client, settings):
    """Counters are kept by triggers; they must equal a full count after inserts, duplicates,
    triage, bulk triage and retention deletes."""
    from santamon.api.state import STORE
    from santamon.jobs.retention import prune

    severities = ["info", "low", "medium", "high", "critical"]
    await client.post("/ingest", headers=AGENT, json=[
        make_signal(f"m{i}", severity=severities[i % 5], host_id=f"h{i % 7}",
                    rule_id=f"R{i % 4}", ts="2001-01-01T00:00:00Z") for i in range(60)])
    await client.post("/ingest", headers=AGENT, json=[make_signal("m1"), make_signal("m2")])
    await client.post("/signals/status", headers=ANALYST, json={
        "signal_ids": [f"m{i}" for i in range(0, 60, 3)], "status": "resolved"})
    await client.patch("/signals/m1/status", json={"status": "acknowledged"}, headers=ANALYST)
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("UPDATE signals SET received_at = '2001-01-01T00:00:00.000000000Z'")
    await prune(client.app[STORE], settings.model_copy(update={"signal_retention": 60}))
    stats = await (await client.get("/stats", headers=ANALYST)).json()
    with sqlite3.connect(settings.db_path) as conn:
        def grouped(column):
            return dict(conn.execute(f"SELECT {column}, count(*) FROM signals GROUP BY 1"))
        assert stats["total_signals"] == conn.execute("SELECT count(*) FROM signals").fetchone()[0]
        assert stats["total_signals"] < 60  # retention really deleted some
        assert stats["by_severity"] == grouped("severity")
        assert stats["by_status"] == grouped("status")
        assert stats["by_host"] == grouped("host_id")
        assert stats["top_rules"] == grouped("rule_id")
        assert stats["open_by_severity"] == dict(conn.execute(
            "SELECT severity, count(*) FROM signals WHERE status = 'open' GROUP BY 1"))
