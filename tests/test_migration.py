"""Opening a database written by the seed's FastAPI backend upgrades it in place."""

import json
import sqlite3

from santamon.app import create_app
from santamon.store.sqlite.schema import SCHEMA_VERSION

from .helpers import AGENT, ANALYST, make_signal

SEED_SCHEMA = """
CREATE TABLE signals (signal_id TEXT PRIMARY KEY, ts TEXT NOT NULL, host_id TEXT NOT NULL,
    rule_id TEXT NOT NULL, severity TEXT NOT NULL, title TEXT NOT NULL, tags TEXT,
    context TEXT, received_at TEXT NOT NULL, status TEXT DEFAULT 'open', rule_description TEXT);
CREATE INDEX idx_ts ON signals(ts DESC);
CREATE INDEX idx_host_id ON signals(host_id);
CREATE INDEX idx_severity ON signals(severity);
CREATE INDEX idx_status ON signals(status);
CREATE TABLE heartbeats (agent_id TEXT NOT NULL, timestamp TEXT NOT NULL, version TEXT,
    os_version TEXT, uptime_seconds REAL, received_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, timestamp));
CREATE INDEX idx_heartbeat_agent ON heartbeats(agent_id, received_at DESC);
CREATE TABLE shipped (signal_id TEXT PRIMARY KEY, shipped_at TEXT NOT NULL);
"""

SEED_ROWS = [
    # raw agent timestamps, mixed offsets and precisions; naive-UTC received_at
    ("s1", "2026-11-03T14:22:07.120934551-08:00", "mbp-alice", "SM-002", "critical", "SSH keys",
     json.dumps(["T1552.004"]), json.dumps({"kind": "file_access"}),
     "2026-11-03T22:22:08.000123", "acknowledged", "desc"),
    ("s2", "2026-11-04T08:15:00.5+05:30", "mbp-ravi", "SM-C01", "high", "Burst",
     json.dumps(["correlation"]), json.dumps({"event_count": 12}), "2026-11-04T02:45:01",
     "open", None),
    ("s3", "2026-11-03T22:22:07Z", "mini", "LOCAL", "medium", "Unsigned", "null",
     json.dumps({}), "2026-11-03T22:22:09.5", "resolved", None),
    ("s4", "garbage time", "mini", "LOCAL", "low", "Broken ts", None, "not json",
     "2026-11-01T00:00:00", None, None),
]


def write_seed_db(path):
    with sqlite3.connect(path) as conn:
        conn.executescript(SEED_SCHEMA)
        conn.executemany("INSERT INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?)", SEED_ROWS)
        conn.executemany("INSERT INTO heartbeats VALUES (?,?,?,?,?,?)", [
            ("mbp-alice", "2026-11-03T14:22:30.1-08:00", "v0.3.0", "15.4", 10.0,
             "2026-11-03T22:22:30.2"),
            ("mbp-alice", "2026-11-03T14:23:00.1-08:00", "v0.3.1", "15.4.1", 40.0,
             "2026-11-03T22:23:00.2"),
            ("mini", "2026-11-03T22:22:30Z", "v0.3.1", "15.2", None, "2026-11-03T22:22:31"),
        ])
        conn.execute("INSERT INTO shipped VALUES ('s1', '2026-11-03T22:23:00')")


async def test_seed_database_is_upgraded_keeping_every_row(aiohttp_client, settings):
    write_seed_db(settings.db_path)
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/signals", params={"status": "all"},
                                   headers=ANALYST)).json()
    signals = {s["signal_id"]: s for s in body["signals"]}
    assert set(signals) == {"s1", "s2", "s3", "s4"}
    assert signals["s1"]["ts"] == "2026-11-03T22:22:07.120934551Z"
    assert signals["s1"]["received_at"] == "2026-11-03T22:22:08.000123000Z"
    assert signals["s1"]["status"] == "acknowledged"
    assert signals["s2"]["ts"] == "2026-11-04T02:45:00.500000000Z"
    assert signals["s3"]["tags"] == []
    assert signals["s4"]["ts"] == "2026-11-01T00:00:00.000000000Z"  # fell back to received_at
    assert signals["s4"]["context"] == {"raw": "not json"}
    assert signals["s4"]["status"] == "open"
    # order is by instant across the old mixed offsets
    assert [s["signal_id"] for s in body["signals"]] == ["s2", "s1", "s3", "s4"]
    one = await (await client.get("/signals/s1", headers=ANALYST)).json()
    assert one["shipped_at"] == "2026-11-03T22:23:00"
    agents = (await (await client.get("/agents", headers=ANALYST)).json())["heartbeats"]
    alice = next(a for a in agents if a["agent_id"] == "mbp-alice")
    assert alice["version"] == "v0.3.1"
    assert alice["first_seen"] == "2026-11-03T22:22:30.200000000Z"
    assert alice["last_seen"] == "2026-11-03T22:23:00.200000000Z"
    # and it keeps working as a normal database
    assert (await client.post("/ingest", json=make_signal("new"), headers=AGENT)).status == 200
    with sqlite3.connect(settings.db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT count(*) FROM heartbeats").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM signals").fetchone() == (5,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_reopening_is_a_no_op(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    await client.post("/ingest", json=make_signal("kept"), headers=AGENT)
    await client.close()
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/signals/kept", headers=ANALYST)).status == 200


async def test_the_seeds_heartbeats_become_history_the_timeline_reads(aiohttp_client, settings):
    """The seed kept every heartbeat (no reasons stored): their distance tells the gaps."""
    write_seed_db(settings.db_path)
    client = await aiohttp_client(create_app(settings))
    timeline = await (await client.get("/agents/mbp-alice", headers=ANALYST, params={
        "since": "2026-11-03T00:00:00Z", "until": "2026-11-04T00:00:00Z"})).json()
    assert [(i["state"], i["start"], i["end"]) for i in timeline["intervals"]] == [
        ("online", "2026-11-03T22:22:30.200000000Z", "2026-11-03T22:23:00.200000000Z"),
        ("offline", "2026-11-03T22:23:00.200000000Z", "2026-11-04T00:00:00.000000000Z")]
    assert [(v["version"], v["since"]) for v in timeline["versions"]] == [
        ("v0.3.0", "2026-11-03T22:22:30.200000000Z"),
        ("v0.3.1", "2026-11-03T22:23:00.200000000Z")]
    assert timeline["reboots"] == [] and timeline["heartbeats_kept"] == 2
