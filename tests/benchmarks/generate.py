"""Build a seed-schema SQLite database of N realistic signals, the way the old backend left it.

Written directly with the stdlib `sqlite3` in the seed's schema (raw Go-style `ts` strings with
the Mac's local offset and 0-9 fraction digits, naive-UTC `received_at`, JSON text for tags and
context, the seed's four signal indexes), so opening it with the service exercises the seed
upgrade. 2,000 hosts (skewed, a few are noisy), 30 rules including correlation and baseline
ones, all severities, ~5 % open, ~2 % acknowledged, the rest resolved, a process tree in most
contexts, a year of timestamps, and recent heartbeats for every host (some stale).

    python tests/benchmarks/generate.py --signals 1000000 --out bench-results/seed-1000000.db

`cached_database(n, cache_dir)` reuses a file built earlier for the same N; the caller copies it
before use because the service upgrades a seed file in place.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

GENERATOR_VERSION = 1
HOSTS = 2000
CHUNK = 20_000
YEAR_S = 365 * 86400

SEED_SCHEMA = """
CREATE TABLE signals (
    signal_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    host_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    tags TEXT,
    context TEXT,
    received_at TEXT NOT NULL,
    status TEXT DEFAULT 'open',
    rule_description TEXT
);
CREATE TABLE heartbeats (
    agent_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    version TEXT,
    os_version TEXT,
    uptime_seconds REAL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, timestamp)
);
CREATE TABLE shipped (
    signal_id TEXT PRIMARY KEY,
    shipped_at TEXT NOT NULL
);
"""
SEED_INDEXES = """
CREATE INDEX idx_ts ON signals(ts DESC);
CREATE INDEX idx_host_id ON signals(host_id);
CREATE INDEX idx_severity ON signals(severity);
CREATE INDEX idx_status ON signals(status);
CREATE INDEX idx_heartbeat_agent ON heartbeats(agent_id, received_at DESC);
"""

# (rule_id, severity, title, description or None, tags or None, kind, weight)
RULES = [
    ("SM-001", "critical", "Keychain database read by unexpected process",
     "Non-Apple process reading login.keychain-db.", ["T1555.001", "credential-access"],
     "file_access", 2),
    ("SM-002", "critical", "SSH private keys read by non-ssh process",
     "Any non-ssh process reading ~/.ssh key material.", ["T1552.004", "credential-access"],
     "file_access", 4),
    ("SM-003", "high", "Browser cookies read by unexpected process",
     "Cookie stores read outside the browser.", ["T1539", "credential-access"], "file_access", 6),
    ("SM-004", "high", "TCC database modified", "Direct writes to TCC.db.",
     ["T1548", "defense-evasion"], "tcc_modification", 2),
    ("SM-005", "medium", "Unsigned binary executed from Downloads", None, None, "execution", 30),
    ("SM-006", "medium", "Launch agent written", "Persistence via LaunchAgents.",
     ["T1543.001", "persistence"], "file_access", 12),
    ("SM-007", "high", "Launch daemon written", "Persistence via LaunchDaemons.",
     ["T1543.004", "persistence"], "file_access", 3),
    ("SM-008", "low", "curl piped to shell", "Download-and-execute pattern.",
     ["T1059.004", "execution"], "execution", 40),
    ("SM-009", "info", "Developer tool executed", None, ["inventory"], "execution", 120),
    ("SM-010", "medium", "Quarantine attribute removed", "xattr -d com.apple.quarantine.",
     ["T1553.001", "defense-evasion"], "execution", 15),
    ("SM-011", "critical", "XProtect detection", "XProtect flagged a binary.",
     ["malware", "xprotect"], "xprotect", 1),
    ("SM-012", "high", "osascript prompting for password", "Fake password dialog.",
     ["T1056.002", "credential-access"], "execution", 2),
    ("SM-013", "low", "Screen capture by non-standard process", None,
     ["T1113", "collection"], "execution", 25),
    ("SM-014", "medium", "Sudoers modified", "Write to /etc/sudoers or sudoers.d.",
     ["T1548.003", "privilege-escalation"], "file_access", 4),
    ("SM-015", "info", "Homebrew package installed", None, ["inventory"], "execution", 150),
    ("SM-016", "low", "Hidden file created in home", None, ["T1564.001"], "file_access", 60),
    ("SM-017", "medium", "Python executing from /tmp", None, ["T1059.006", "execution"],
     "execution", 20),
    ("SM-018", "high", "Kernel extension load attempt", "kextload outside MDM.",
     ["T1547.006", "persistence"], "execution", 1),
    ("SM-019", "info", "Login item added", None, ["persistence"], "file_access", 80),
    ("SM-020", "low", "Network tool executed", None, ["discovery"], "execution", 70),
    ("SM-021", "medium", "Shell history cleared", None, ["T1070.003", "defense-evasion"],
     "file_access", 6),
    ("SM-022", "critical", "Credential dumping tool", "Known credential dumper executed.",
     ["T1003", "credential-access"], "execution", 1),
    ("SM-023", "high", "Gatekeeper disabled", "spctl --master-disable.",
     ["T1553.001", "defense-evasion"], "execution", 1),
    ("SM-024", "info", "Remote login enabled", None, None, "execution", 10),
    ("LOCAL-UNSIGNED-DL", "medium", "Unsigned tool run from Downloads by CI", None, None,
     "execution", 35),
    ("SM-C01", "high", "Burst of blocked executions",
     "Many distinct binaries blocked within 5 minutes.", ["execution", "correlation"],
     "correlation", 8),
    ("SM-C02", "medium", "Many files read in .ssh and .aws within a minute", None,
     ["credential-access", "correlation"], "correlation", 5),
    ("SM-C03", "critical", "Persistence and exfil tool in one session",
     "Launch agent write followed by an upload tool.", ["persistence", "correlation"],
     "correlation", 1),
    ("SM-B01", "low", "Binary never seen on this host before",
     "Baseline: first execution of a path.", ["baseline"], "baseline", 50),
    ("SM-B02", "info", "New parent/child process pair", None, ["baseline"], "baseline", 90),
]

ZONES = [(-8 * 3600, "-08:00"), (-7 * 3600, "-07:00"), (-5 * 3600, "-05:00"),
         (-4 * 3600, "-04:00"), (0, "Z"), (3600, "+01:00"), (7200, "+02:00"),
         (19800, "+05:30"), (32400, "+09:00"), (36000, "+10:00")]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "ci", "mallory", "oscar", "peggy", "trent", "victor", "walter", "ravi", "mei", "sven"]
BINARIES = ["/usr/local/bin/python3.12", "/usr/bin/curl", "/opt/homebrew/bin/node",
            "/Applications/Slack.app/Contents/MacOS/Slack", "/usr/bin/osascript",
            "/bin/bash", "/usr/bin/security", "/opt/homebrew/bin/wget", "/usr/bin/nc",
            "/Users/{u}/Downloads/tool", "/tmp/.x/updater", "/usr/sbin/screencapture"]
EPOCH = datetime(1970, 1, 1)


def go_time(utc_s: int, offset: int, zone: str, rng: random.Random) -> str:
    """A Go `time.Time` in the Mac's local zone: nanoseconds with trailing zeros trimmed."""
    digits = rng.randrange(10)
    frac = ""
    if digits:
        frac = "." + str(rng.randrange(10 ** (digits - 1), 10 ** digits))[:digits - 1] \
            + str(rng.randrange(1, 10))
    local = EPOCH + timedelta(seconds=utc_s + offset)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone


def naive_utc(utc_s: float) -> str:
    """The seed's `datetime.utcnow().isoformat()`."""
    return (EPOCH + timedelta(seconds=utc_s)).isoformat()


def process_tree(rng: random.Random, user: str, uid: int, path: str, start: str) -> list:
    tree = [{"relation": "target", "depth": 0, "pid": rng.randrange(300, 99999),
             "pidversion": rng.randrange(1, 9), "path": path, "user": user, "uid": uid,
             "group": "staff", "gid": 20, "session_id": 100, "start_time": start,
             "args": [path.rsplit("/", 1)[-1], "-c", f"job-{rng.randrange(10**6)}"]},
            {"relation": "parent", "depth": 1, "pid": rng.randrange(300, 9999), "pidversion": 1,
             "path": rng.choice(["/bin/zsh", "/bin/bash", "/sbin/launchd", "/usr/bin/login"]),
             "user": user, "uid": uid, "group": "staff", "gid": 20, "session_id": 100,
             "start_time": start}]
    for depth in range(2, 2 + rng.randrange(3)):
        tree.append({"relation": "ancestor", "depth": depth, "pid": rng.randrange(1, 999),
                     "pidversion": 1,
                     "path": "/System/Applications/Utilities/Terminal.app/Contents/MacOS/Terminal",
                     "user": user, "uid": uid, "group": "staff", "gid": 20, "session_id": 100,
                     "start_time": start})
    tree.append({"relation": "ancestor", "depth": len(tree), "pid": 1, "pidversion": 1,
                 "path": "/sbin/launchd", "user": "root", "uid": 0, "group": "wheel", "gid": 0,
                 "session_id": 1, "start_time": start})
    return tree


def context(rng: random.Random, kind: str, user: str, ts: str, seq: int) -> dict:
    actor = rng.choice(BINARIES).format(u=user)
    target = f"/Users/{user}/.ssh/id_ed25519" if kind == "file_access" else actor
    decision = rng.choice(["DECISION_ALLOW", "DECISION_DENY", "POLICY_DECISION_ALLOWED_AUDIT_ONLY"])
    if kind == "correlation":
        values = [f"/tmp/{rng.randrange(10**6):x}" for _ in range(rng.randrange(3, 12))]
        return {"event_count": len(values) + rng.randrange(5), "window_type": "correlation",
                "distinct_field": "execution.target.executable.path", "distinct_values": values,
                "grouped_by": {"execution.instigator.executable.path": actor},
                "sample_event": {"execution": {"decision": decision,
                                               "target": {"executable": {"path": values[-1]}}}},
                "actor_path": actor, "target_path": values[-1], "decision": decision,
                "kind": "execution"}
    uid = 501 + USERS.index(user) if user in USERS else 501
    ctx = {"actor_path": actor, "actor_signing_id": "com.example." + actor.rsplit("/", 1)[-1],
           "actor_team": rng.choice(["EQHXZ8M8AV", "", "UBF8T346G9"]), "target_path": target,
           "decision": decision, "kind": kind,
           "spool_archive_path": f"/var/lib/santamon/spool_hits/spool_{seq % 999999:06d}.pb",
           "execution.args": [actor.rsplit("/", 1)[-1], f"--id={seq}"],
           "process_tree": process_tree(rng, user, uid, actor, ts)}
    if kind == "baseline":
        ctx["pattern"] = f"{actor}|{target}"
        ctx["in_learning"] = rng.random() < 0.1
    if kind == "xprotect":
        ctx["target_sha256"] = f"{rng.getrandbits(256):064x}"
    if rng.random() < 0.03:  # rules that attach the whole decoded telemetry event
        ctx["event"] = {"file_access": {"instigator": {"executable": {"path": actor},
                                                       "args": ["x"] * 40},
                                        "target": {"path": target}, "policy_name": "ssh"},
                        "padding": "e" * 1500}
    return ctx


def _signal_rows(n: int, end_s: int, rng: random.Random):
    hosts = [f"mbp-{USERS[i % len(USERS)]}-{i:04d}" for i in range(HOSTS)]
    host_zone = [ZONES[rng.randrange(len(ZONES))] for _ in range(HOSTS)]
    host_weights = [1.0 / (i + 1) ** 0.7 for i in range(HOSTS)]
    host_cum = []
    acc = 0.0
    for w in host_weights:
        acc += w
        host_cum.append(acc)
    rule_cum = []
    acc = 0.0
    for rule in RULES:
        acc += rule[6]
        rule_cum.append(acc)
    rule_tags = [json.dumps(r[4] if r[4] is not None else []) for r in RULES]
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    start = end_s - YEAR_S
    produced = 0
    while produced < n:
        k = min(CHUNK, n - produced)
        # rows go in in time order, as a live service would have written them
        offsets = sorted(rng.randrange(YEAR_S * 1000) for _ in range(k))
        host_idx = rng.choices(range(HOSTS), cum_weights=host_cum, k=k)
        rule_idx = rng.choices(range(len(RULES)), cum_weights=rule_cum, k=k)
        rows = []
        for j in range(k):
            seq = produced + j
            utc_ms = start * 1000 + offsets[j]
            utc_s = utc_ms // 1000
            h = host_idx[j]
            offset, zone = host_zone[h]
            ts = go_time(utc_s, offset, zone, rng)
            rule = RULES[rule_idx[j]]
            user = USERS[h % len(USERS)]
            p = rng.random()
            status = "open" if p < 0.05 else "acknowledged" if p < 0.07 else "resolved"
            rows.append((f"{rng.getrandbits(128):032x}", ts, hosts[h], rule[0], rule[1], rule[2],
                         rule_tags[rule_idx[j]], dumps(context(rng, rule[5], user, ts, seq)),
                         naive_utc(utc_ms / 1000 + 0.05 + rng.random() * 20), status, rule[3]))
        produced += k
        yield from rows


def _heartbeat_rows(end_s: int, rng: random.Random):
    for i in range(HOSTS):
        agent = f"mbp-{USERS[i % len(USERS)]}-{i:04d}"
        offset, zone = ZONES[i % len(ZONES)]
        # most agents report every 30 s; about 10 % went quiet hours or days ago
        quiet = rng.randrange(30) if rng.random() < 0.9 else rng.randrange(3600, 30 * 86400)
        last = end_s - quiet
        for beat in range(10):
            t = last - beat * 30
            yield (agent, go_time(t, offset, zone, rng), f"v0.3.{rng.randrange(2)}",
                   rng.choice(["15.4.1", "15.2", "14.7.5"]), 3600.25 + t % 86400,
                   naive_utc(t + 0.2))


def generate(path: Path, n: int, seed: int = 5, end_s: int | None = None) -> dict:
    """Write a seed-schema database with n signals to path (replaced if present)."""
    rng = random.Random(seed)
    end_s = int(time.time()) if end_s is None else end_s
    tmp = path.with_name(path.name + ".tmp")
    for stale in (tmp, Path(str(tmp) + "-journal")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-200000")
        db.executescript(SEED_SCHEMA)
        db.execute("BEGIN")
        db.executemany("INSERT INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       _signal_rows(n, end_s, rng))
        db.executemany("INSERT OR IGNORE INTO heartbeats VALUES (?,?,?,?,?,?)",
                       _heartbeat_rows(end_s, rng))
        db.executescript(SEED_INDEXES)  # commits the open transaction first
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()
    os.replace(tmp, path)
    return {"signals": n, "hosts": HOSTS, "rules": len(RULES), "generated_at_s": end_s,
            "seconds": round(time.monotonic() - started, 1), "bytes": path.stat().st_size,
            "generator_version": GENERATOR_VERSION}


def cached_database_path(n: int, cache_dir: Path) -> Path:
    return cache_dir / f"seed-v{GENERATOR_VERSION}-{n}.db"


def cached_database(n: int, cache_dir: Path, log=print) -> Path:
    """A seed-schema file with n signals under cache_dir, generated once per N and version."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cached_database_path(n, cache_dir)
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path
    log(f"generating {n:,} signals into {path} (cached for later runs)")
    info = generate(path, n)
    meta.write_text(json.dumps(info, indent=2))
    log(f"generated in {info['seconds']} s, {info['bytes'] / 1e6:.0f} MB")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    info = generate(args.out, args.signals, seed=args.seed)
    json.dump(info, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
