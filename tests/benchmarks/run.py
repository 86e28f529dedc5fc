"""The benchmark suite behind `make bench`: ingest against a ceiling, queries over a big database,
SQLite beside PostgreSQL, one worker process beside two.

    .venv/bin/python tests/benchmarks/run.py                      # 1,000,000 signals, full run
    .venv/bin/python tests/benchmarks/run.py --signals 100000 --quick
    .venv/bin/python tests/benchmarks/run.py --skip sqlite        # PostgreSQL alone

What it does, all on 127.0.0.1:
1. copies a cached seed-schema database of N signals (generate.py) and times the real server's
   first start on it (the seed upgrade), then a second start for comparison;
2. query latency (p50/p95, 8 concurrent clients) for each query kind of issue 5, idle;
3. single-signal ingest with wrk (32 connections) in turns with the ceiling app, rounds x seconds,
   and the ratio of req/s; then batch ingest (arrays of 500) on both, then heartbeats; each
   with the server's CPU time (user + system from /proc/PID/stat, threads included) per
   request, per signal in batches: first on a new empty file, then on the big one;
4. durability: SIGKILLs the server and checks every id it acknowledged with a 2xx is in the file;
5. the same queries again while a separate process ingests 500 signals/s;
6. server RSS (/proc) and database size;
7. PostgreSQL (postgres.py): a server whose data directory is cached in bench-results/pg-N/
   (the seed copied in once with `santamon migrate-db`), a fresh copy of that database per run;
   the queries idle, single-signal ingest in rotating turns on SQLite, PostgreSQL with one
   worker and with `--workers 2`, then batches on each, with the CPU time (user + system, from
   /proc/PID/stat) of the service's processes and of PostgreSQL's per request; SIGKILL and
   every acknowledged id looked up; the queries under ingest;
8. the heartbeat fleet, on a database of its own: 5,000 agents beating ~2,000 times a second,
   alone and then with 300 signals/s, measuring what the server writes to disk per heartbeat and
   per signal (/proc/PID/io), its CPU per heartbeat (/proc/PID/stat), the largest the WAL gets,
   and how many history rows an agent leaves per week.
Prints a table, writes bench-results/report.json. `--only fleet` runs the last phase alone
(no seed file needed); `--skip sqlite` or `--skip postgres` leaves an engine out; `--server`
may be any `santamon` command, e.g. an older checkout's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import generate  # noqa: E402
import postgres  # noqa: E402

START_TIMEOUT_S = 600.0  # a first open may upgrade a large seed file
SEED_PHASES = ("queries", "ingest", "under-ingest")
# Which engines the seed phases run on; `workers` is PostgreSQL's run with --workers 2.
ENGINE_PHASES = ("sqlite", "postgres", "workers")
PHASES = (*SEED_PHASES, *ENGINE_PHASES, "fleet")

# The heartbeat fleet (issue 16). Real agents beat every 30 s; 5,000 of them beating 2,000
# times a second beat 12 times faster, so the server's history sample is shortened 12 times
# too, and history rows per agent per week are scaled back (see fleet_phase).
FLEET_AGENTS = 5000
FLEET_HEARTBEATS_PER_S = 2000
FLEET_SIGNALS_PER_S = 300
AGENT_INTERVAL_S = 30
DEFAULT_HEARTBEAT_SAMPLE_S = 600
FLEET_SETTLE_S = 3.0  # after the load stops: the last flush and checkpoint belong to the phase
WAL_SAMPLE_EVERY_S = 0.05
WEEK_S = 7 * 86400
FLEET_GOALS = {"fleet_bytes_per_heartbeat": 1024, "fleet_bytes_per_signal": 2048,
               "fleet_wal_mb": 64, "fleet_history_rows_per_week": 1500,
               # no worse than main before issue 16: 216-246 us in this phase on the 2-core VM
               # (FINDINGS.md, "Heartbeats at fleet scale")
               "fleet_cpu_us_per_heartbeat": 250}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> dict:
    fields = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def db_size_mb(path: Path) -> dict:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            sizes["db" + suffix.replace("-", "_")] = round(part.stat().st_size / 1e6, 1)
    return sizes


def _epoch(stored: str) -> float:
    """Seconds since the epoch of a stored UTC timestamp (microseconds are enough here)."""
    return datetime.fromisoformat(stored[:26]).replace(tzinfo=UTC).timestamp()


def proc_counters(pid: int, port: int, admin_key: str) -> dict:
    """Bytes the process made the kernel write to storage, its CPU seconds and its database
    commits so far."""
    counters = {"commits": 0}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {admin_key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("santamon_store_commit_seconds_count"):
                counters["commits"] = int(float(line.split()[-1]))
    with open(f"/proc/{pid}/io") as io:
        for line in io:
            key, _, value = line.partition(":")
            if key == "write_bytes":
                counters["write_bytes"] = int(value)
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5); the split starts at field 3
    counters["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return counters


class LargestSize(threading.Thread):
    """The largest size a file reaches while sampled (the WAL comes and goes)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.largest, self.samples = path, 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(WAL_SAMPLE_EVERY_S):
            with contextlib.suppress(OSError):
                self.largest = max(self.largest, self.path.stat().st_size)
                self.samples += 1


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


class Process:
    """A server subprocess with its log file; stopped politely, or killed on request."""

    def __init__(self, name: str, argv: list[str], env: dict, port: int, logdir: Path):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.logfile = logdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait until /health answers; returns seconds from spawn to healthy."""
        log_handle = open(self.logfile, "ab")  # noqa: SIM115 - handed to the child
        started = time.monotonic()
        # A group of its own: its workers (--workers) are found, timed and stopped with it.
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log_handle,
                                     stderr=subprocess.STDOUT, cwd=ROOT, process_group=0)
        log_handle.close()
        url = f"http://127.0.0.1:{self.port}/health"
        deadline = started + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.logfile}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)
                    if b" 200 " in sock.recv(64):
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy at {url} after {START_TIMEOUT_S} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        """The server's processes: itself, and its workers when it supervises some."""
        return postgres.process_group(self.pid) if self.proc else []

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # whatever is left of its group
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


Pids = Callable[[], list[int]]


def keys_and_env() -> tuple[dict[str, str], dict[str, str]]:
    """New agent and admin keys, and a server environment with them: this process's, without
    any SANTAMON_ setting of its own, listening on 127.0.0.1 only."""
    keys = {"agent": "bench-agent-" + secrets.token_hex(16),
            "admin": "bench-admin-" + secrets.token_hex(16)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTAMON_")}
    env.update(SANTAMON_API_KEY=keys["agent"], SANTAMON_ADMIN_KEY=keys["admin"],
               SANTAMON_HOST="127.0.0.1")
    return keys, env


def run_wrk(url: str, mode: str, key: str, ackdir: Path | None, seconds: float, connections: int,
            threads: int, batch: int = 500, cpu: dict[str, Pids] | None = None) -> dict:
    """One wrk run; `cpu` names groups of processes (the service, the database) whose user
    plus system time is reported per request answered with a 2xx (per signal in batches)."""
    nonce = secrets.token_hex(4)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{round(seconds)}s", "--timeout",
            "10s", "-s", str(HERE / "ingest.lua"), url, "--", mode, nonce, key, str(ackdir or ""),
            str(batch)]
    groups = {name: pids() for name, pids in (cpu or {}).items()}
    before = {name: postgres.cpu_seconds(pids) for name, pids in groups.items()}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    used = {name: postgres.cpu_seconds(pids) - before[name] for name, pids in groups.items()}
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
            result["nonce"] = nonce
            secs = result["duration_us"] / 1e6
            result["req_per_s"] = round(result["ok_2xx"] / secs, 1)
            result["signals_per_s"] = round(result["acked_ids"] / secs, 1)
            units = result["acked_ids"] if mode == "batch" else result["ok_2xx"]
            result["cpu_us_per_" + ("signal" if mode == "batch" else "request")] = {
                name: round(seconds_used * 1e6 / max(units, 1), 1)
                for name, seconds_used in used.items()}
            result["processes"] = {name: len(pids) for name, pids in groups.items()}
            return result
    raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")


def summary(results: list[dict]) -> dict:
    """Rounds of single-signal ingest against one server, taken together."""
    total_ok = sum(r["ok_2xx"] for r in results)
    total_s = sum(r["duration_us"] for r in results) / 1e6
    cpu = {name: round(sum(r["cpu_us_per_request"][name] * r["ok_2xx"] for r in results)
                       / max(total_ok, 1), 1)
           for name in results[0]["cpu_us_per_request"]}
    return {"req_per_s": round(total_ok / total_s, 1),
            "p50_ms": round(sorted(r["p50_us"] for r in results)[len(results) // 2] / 1000, 2),
            "p99_ms": round(max(r["p99_us"] for r in results) / 1000, 2),
            "non_2xx": sum(r["non_2xx"] for r in results),
            "cpu_us_per_request": cpu,
            "rounds": results}


def ingest_phase(real: Process, ceiling: Process, args, keys: dict, ackdir: Path) -> dict:
    rounds = {"ceiling": [], "santamon": []}
    targets = {"ceiling": ceiling, "santamon": real}
    for index in range(args.rounds):
        order = ["ceiling", "santamon"] if index % 2 == 0 else ["santamon", "ceiling"]
        for name in order:
            result = run_wrk(f"http://127.0.0.1:{targets[name].port}/ingest", "single",
                             keys["agent"], ackdir if name == "santamon" else None,
                             args.duration, args.connections, args.threads,
                             cpu={"server": targets[name].pids})
            rounds[name].append(result)
            log(f"single ingest round {index + 1} {name}: {result['req_per_s']:.0f} req/s, "
                f"p50 {result['p50_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, "
                f"non-2xx {result['non_2xx']}, socket errors "
                f"{result['err_connect'] + result['err_read'] + result['err_timeout']}, "
                f"CPU {result['cpu_us_per_request']['server']} us/request")
            time.sleep(1)

    single = {name: summary(results) for name, results in rounds.items()}
    single["ratio"] = round(single["santamon"]["req_per_s"] / single["ceiling"]["req_per_s"], 3)

    batch = {name: batch_ingest(name, targets[name], args, keys["agent"],
                                ackdir if name == "santamon" else None,
                                {"server": targets[name].pids})
             for name in ("ceiling", "santamon")}
    return {"single": single, "batch": batch, "heartbeat": heartbeat_ingest(real, args, keys)}


def heartbeat_ingest(real: Process, args, keys: dict) -> dict:
    """Heartbeats of 2,000 agents, 32 connections: the server's CPU per heartbeat, to set
    beside the ceiling's per signal (the ceiling has no heartbeat of its own)."""
    result = run_wrk(f"http://127.0.0.1:{real.port}/agents/heartbeat", "heartbeat",
                     keys["agent"], None, args.duration, args.connections, args.threads,
                     cpu={"server": real.pids})
    log(f"heartbeats: {result['req_per_s']:.0f} req/s, p99 {result['p99_us'] / 1000:.1f} ms, "
        f"non-2xx {result['non_2xx']}, CPU {result['cpu_us_per_request']} us/heartbeat")
    return {"req_per_s": result["req_per_s"], "p99_ms": round(result["p99_us"] / 1000, 2),
            "non_2xx": result["non_2xx"], "cpu_us_per_request": result["cpu_us_per_request"]}


def empty_file_ingest(real: Process, ceiling: Process, args, keys: dict) -> dict:
    """The same ingest measures on a new, empty database file, in a server of its own beside
    the idle one on the big file: what a signal costs before the B-trees are deep."""
    rundir = real.logfile.parent
    port = free_port()
    empty = Process("santamon-empty", real.argv, {**real.env, "SANTAMON_PORT": str(port),
                                                  "SANTAMON_DB_PATH": str(rundir / "empty.db")},
                    port, rundir)
    log("ingest on an empty file")
    empty.start()
    try:
        return ingest_phase(empty, ceiling, args, keys, None)
    finally:
        empty.stop()


def batch_ingest(name: str, target: Process, args, key: str, ackdir: Path | None,
                 cpu: dict[str, Pids]) -> dict:
    result = run_wrk(f"http://127.0.0.1:{target.port}/ingest", "batch", key, ackdir,
                     args.batch_duration, args.batch_connections,
                     min(args.threads, args.batch_connections), batch=args.batch_size, cpu=cpu)
    log(f"batch ingest ({args.batch_size}/request) {name}: "
        f"{result['signals_per_s']:.0f} signals/s, non-2xx {result['non_2xx']}, CPU "
        f"{result['cpu_us_per_signal']} us/signal")
    return {"signals_per_s": result["signals_per_s"],
            "p50_ms": round(result["p50_us"] / 1000, 1),
            "p99_ms": round(result["p99_us"] / 1000, 1),
            "non_2xx": result["non_2xx"], "requests": result["requests"],
            "cpu_us_per_signal": result["cpu_us_per_signal"], "nonce": result["nonce"]}


def compare_ingest(targets: dict[str, tuple[Process, dict[str, Pids]]], args, key: str,
                   ackdir: Path) -> dict:
    """Single-signal ingest on each target in turn, the order rotating every round so that a
    change in the machine's load falls on all of them alike; then batches on each."""
    names = list(targets)
    rounds: dict[str, list[dict]] = {name: [] for name in names}
    for index in range(args.rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            target, cpu = targets[name]
            result = run_wrk(f"http://127.0.0.1:{target.port}/ingest", "single", key,
                             ackdir if "postgres" in name else None, args.duration,
                             args.connections, args.threads, cpu=cpu)
            rounds[name].append(result)
            log(f"single ingest round {index + 1} {name}: {result['req_per_s']:.0f} req/s, "
                f"p99 {result['p99_us'] / 1000:.1f} ms, non-2xx {result['non_2xx']}, "
                f"CPU {result['cpu_us_per_request']} us/request "
                f"({result['processes']} processes)")
            time.sleep(1)
    single = {name: summary(results) for name, results in rounds.items()}
    batch = {name: batch_ingest(name, target, args, key, ackdir if "postgres" in name else None,
                                cpu) for name, (target, cpu) in targets.items()}
    return {"single": single, "batch": batch}


def postgres_phases(args, phases: set[str], seed: Path, plan: list, keys: dict, env: dict,
                    rundir: Path, sqlite_server: Process | None,
                    seconds_per_kind: float) -> dict:
    """The same measures on PostgreSQL (the seed copied in with `santamon migrate-db`), and
    ingest with one worker and with two, beside SQLite."""
    report: dict = {}
    log("PostgreSQL: starting the cached server (built from the seed file the first time)")
    started = time.monotonic()
    server = postgres.start_server(args.results, args.signals, seed, Path(args.server), log)
    report["server_ready_s"] = round(time.monotonic() - started, 1)
    url = postgres.fresh_run_database(server)
    pg_env = {**env, "SANTAMON_DATABASE_URL": url}
    one_port, two_port = free_port(), free_port()
    one = Process("santamon-pg", [args.server, "serve"], {**pg_env, "SANTAMON_PORT": str(one_port)},
                  one_port, rundir)
    two = Process("santamon-pg-2-workers", [args.server, "serve", "--workers", "2"],
                  {**pg_env, "SANTAMON_PORT": str(two_port)}, two_port, rundir)
    base = f"http://127.0.0.1:{one_port}"
    admin_headers = {"Authorization": f"Bearer {keys['admin']}"}
    database_cpu = {"postgres": lambda: postgres.postgres_processes(server)}
    try:
        report["first_start_s"] = round(one.start(), 2)
        if "queries" in phases:
            plan = with_deep_pages(base, admin_headers, args, plan, report)
            log(f"PostgreSQL: queries, idle, {args.clients} clients")
            report["queries_idle"] = asyncio.run(measure_queries(
                base, admin_headers, plan, args.clients, args.queries, seconds_per_kind))
        if "ingest" in phases:
            ackdir = rundir / "acked-postgres"
            ackdir.mkdir()
            targets: dict[str, tuple[Process, dict[str, Pids]]] = {}
            if sqlite_server is not None:
                targets["sqlite"] = (sqlite_server, {"santamon": sqlite_server.pids})
            targets["postgres, 1 worker"] = (one, {"santamon": one.pids, **database_cpu})
            if "workers" in phases:
                two.start()
                targets["postgres, 2 workers"] = (two, {"santamon": two.pids, **database_cpu})
            report["ingest"] = compare_ingest(targets, args, keys["agent"], ackdir)
            two.stop()
            log("PostgreSQL: SIGKILL the service, then look for every acknowledged id")
            one.stop(kill=True)
            report["durability"] = postgres.missing_acknowledged(url, ackdir)
            log(f"durability: {report['durability']}")
            one.start()
            postgres.settle(url)
        if "under-ingest" in phases and "queries" in phases:
            report.update(queries_under_ingest(args, one_port, keys, plan, seconds_per_kind,
                                               engine="PostgreSQL: "))
        report["rss"] = {pid: rss_mb(pid) for pid in one.pids()}
        report["db_size_mb"] = postgres.database_size_mb(url)
    finally:
        one.stop()
        two.stop()
        postgres.drop_run_database(server)
        server.stop()
    return report


def check_durable(db_path: Path, ackdir: Path, nonces: list[str]) -> dict:
    """After a SIGKILL: every id acknowledged with a 2xx is in the file; count rows per run."""
    acked: list[str] = []
    for path in sorted(ackdir.glob("acked-*.txt")):
        acked.extend(line for line in path.read_text().splitlines() if line)
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        db.execute("CREATE TEMP TABLE acked (signal_id TEXT PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO temp.acked VALUES (?)", ((i,) for i in acked))
        missing = db.execute("SELECT count(*) FROM temp.acked a WHERE NOT EXISTS "
                             "(SELECT 1 FROM main.signals s WHERE s.signal_id = a.signal_id)"
                             ).fetchone()[0]
        sample = [r[0] for r in db.execute(
            "SELECT signal_id FROM temp.acked a WHERE NOT EXISTS (SELECT 1 FROM main.signals s "
            "WHERE s.signal_id = a.signal_id) LIMIT 5")]
        stored = 0
        for nonce in nonces:  # ids are NONCE + ..., so a prefix range on the primary key
            stored += db.execute("SELECT count(*) FROM signals WHERE signal_id >= ? AND "
                                 "signal_id < ?", (nonce, nonce + "g")).fetchone()[0]
    finally:
        db.close()
    return {"acknowledged": len(acked), "distinct_acknowledged": len(set(acked)),
            "missing_after_sigkill": missing, "missing_sample": sample,
            "rows_from_runs": stored, "durable": missing == 0}


def query_plan(db_path: Path, meta: dict) -> tuple[list[tuple[str, list[str]]], dict]:
    """The query kinds of issues 5 and 14 with concrete parameters picked from the data."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        count = db.execute("SELECT max(rowid) FROM signals").fetchone()[0] or 1
        step = max(1, count // 500)
        ids = [r[0] for r in db.execute("SELECT signal_id FROM signals WHERE rowid % ? = 0 "
                                        "LIMIT 500", (step,))]
        top_hosts = [r[0] for r in db.execute("SELECT host_id FROM signals WHERE rowid <= 200000 "
                                              "GROUP BY host_id ORDER BY count(*) DESC LIMIT 40")]
    finally:
        db.close()
    end = datetime.fromtimestamp(meta.get("generated_at_s", time.time()), UTC)

    def ago(days: int, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
        return datetime.fromtimestamp(end.timestamp() - days * 86400, UTC).strftime(fmt)

    # as an agent would write them: local offsets, so "+" must be escaped in the query string
    since_1d, since_7d = quote(ago(1)), quote(ago(7, "%Y-%m-%dT%H:%M:%S.5-00:00"))
    until_old = quote(ago(300, "%Y-%m-%dT%H:%M:%S+00:00"))
    hosts = top_hosts or ["mbp-alice-0000"]
    plan = [
        ("default list", ["/signals"]),
        ("severity=critical", ["/signals?severity=critical"]),
        ("severity=high,critical", ["/signals?severity=high,critical"]),
        ("status=acknowledged", ["/signals?status=acknowledged"]),
        ("status=all", ["/signals?status=all"]),
        ("host_id", [f"/signals?host_id={h}&status=all" for h in hosts[:20]]),
        ("rule_id (rare)", ["/signals?rule_id=SM-022&status=all"]),
        ("since (1 day)", [f"/signals?since={since_1d}&status=all"]),
        ("since (7 days)", [f"/signals?since={since_7d}"]),
        ("until (old)", [f"/signals?until={until_old}&status=all"]),
        ("host+severity+status", [f"/signals?host_id={h}&severity=high&status=open"
                                  for h in hosts[:20]]),
        ("search, no match", ["/signals?search=zq-no-such-thing-qz&status=all"]),
        ("search, many matches", ["/signals?search=Downloads&status=all"]),
        ("search, open", ["/signals?search=keys"]),
        ("deep cursor page", []),  # filled in once the cursor is found
        ("GET /signals/{id}", [f"/signals/{i}" for i in ids] or ["/signals/none"]),
        ("/stats", ["/stats"]),
        ("/agents", ["/agents"]),
        ("/agents?status=all&limit=2000", ["/agents?status=all&limit=2000"]),
        # Grouped repeats (issue 14): the console's grouped queue and its filters.
        ("groups, open", ["/signals/groups"]),
        ("groups, status=all", ["/signals/groups?status=all"]),
        ("groups, host_id", [f"/signals/groups?host_id={h}&status=all" for h in hosts[:20]]),
        ("groups, rule_id (common)", ["/signals/groups?rule_id=SM-015&status=all"]),
        ("groups, severity=critical", ["/signals/groups?severity=critical&status=all"]),
        ("groups, since (1 day)", [f"/signals/groups?since={since_1d}&status=all"]),
        ("groups, since (7 days)", [f"/signals/groups?since={since_7d}"]),
        ("groups, search", ["/signals/groups?search=keys&status=all"]),
        ("groups, deep page", []),  # filled in once the cursor is found
    ]
    return plan, {"sample_ids": len(ids), "hosts": hosts[:3]}


def queries_under_ingest(args, port: int, keys: dict, plan: list, seconds_per_kind: float,
                         engine: str = "") -> dict:
    """The queries again while a process of its own ingests at args.ingest_rate."""
    seconds = len([p for p in plan if p[1]]) * seconds_per_kind + 30
    log(f"{engine}queries while ingesting {args.ingest_rate:.0f} signals/s")
    paced = start_paced_ingest(port, keys["agent"], args.ingest_rate, seconds)
    time.sleep(3)
    measured = asyncio.run(measure_queries(
        f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {keys['admin']}"}, plan,
        args.clients, args.queries, seconds_per_kind))
    if paced.poll() is None:
        paced.send_signal(signal.SIGTERM)
    return {"queries_under_ingest": measured, "background_ingest": finish_paced_ingest(paced)}


def with_deep_pages(base: str, headers: dict, args, plan: list, report: dict) -> list:
    """The plan with its deep pages (of signals, of groups) at cursors found by paging."""
    deep = asyncio.run(find_deep_cursor(base, headers, 20 if args.quick else 100, 120))
    report["deep_cursor"] = {k: v for k, v in deep.items() if k != "cursor"}
    if deep.get("cursor"):
        plan = [(kind, [f"/signals?status=all&limit=100&cursor={deep['cursor']}"]
                 if kind == "deep cursor page" else paths) for kind, paths in plan]
    log(f"deep cursor: {report['deep_cursor']}")
    deep = asyncio.run(find_deep_cursor(base, headers, 4 if args.quick else 20, 60,
                                        path="/signals/groups", limit=500))
    report["deep_group_cursor"] = {k: v for k, v in deep.items() if k != "cursor"}
    if deep.get("cursor"):
        plan = [(kind, [f"/signals/groups?status=all&cursor={deep['cursor']}"]
                 if kind == "groups, deep page" else paths) for kind, paths in plan]
    log(f"deep group cursor: {report['deep_group_cursor']}")
    return plan


async def find_deep_cursor(base: str, headers: dict, pages: int, budget_s: float,
                           path: str = "/signals", limit: int = 1000) -> dict:
    """Follow next_cursor over status=all at `limit` for `pages` pages (bounded in time)."""
    cursor = None
    started = time.monotonic()
    walked = 0
    async with aiohttp.ClientSession(headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        for _ in range(pages):
            if time.monotonic() - started > budget_s:
                break
            params = {"status": "all", "limit": str(limit)}
            if cursor:
                params["cursor"] = cursor
            async with session.get(base + path, params=params) as resp:
                if resp.status != 200:
                    return {"error": f"HTTP {resp.status}: {(await resp.text())[:200]}"}
                body = await resp.json()
            if not body.get("next_cursor"):
                break
            cursor = body["next_cursor"]
            walked += 1
    return {"cursor": cursor, "pages": walked, "rows_deep": walked * limit,
            "seconds": round(time.monotonic() - started, 1)}


async def measure_queries(base: str, headers: dict, plan: list[tuple[str, list[str]]],
                          clients: int, requests_per_kind: int, seconds_per_kind: float) -> dict:
    results = {}
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout,
                                     connector=connector) as session:
        for kind, paths in plan:
            if not paths:
                continue
            latencies: list[float] = []
            errors: dict[str, int] = {}
            counts: list[int] = []
            issued = 0
            deadline = time.monotonic() + seconds_per_kind

            async def worker(paths=paths, latencies=latencies, errors=errors,
                             counts=counts, deadline=deadline) -> None:
                nonlocal issued
                while issued < requests_per_kind and time.monotonic() < deadline:
                    path = paths[issued % len(paths)]
                    issued += 1
                    started = time.perf_counter()
                    try:
                        async with session.get(base + path) as resp:
                            data = await resp.read()
                            status = resp.status
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                        continue
                    latencies.append((time.perf_counter() - started) * 1000)
                    if status != 200:
                        errors[str(status)] = errors.get(str(status), 0) + 1
                    elif path.startswith(("/signals?", "/signals/groups")) or path == "/signals":
                        with contextlib.suppress(ValueError, KeyError):
                            counts.append(json.loads(data)["count"])

            await asyncio.gather(*(worker() for _ in range(clients)))
            results[kind] = {"n": len(latencies), "p50_ms": pct(latencies, 0.50),
                             "p95_ms": pct(latencies, 0.95), "max_ms": pct(latencies, 1.0),
                             "rows": counts[0] if counts else None, "errors": errors,
                             "path": paths[0]}
    return results


def start_paced_ingest(port: int, key: str, rate: float, seconds: float, *,
                       heartbeats_of: int = 0, nonce: str | None = None,
                       first: int = 0) -> subprocess.Popen:
    """loadgen.py in its own process: signals, or heartbeats of a fleet of `heartbeats_of`
    agents (the same nonce and a later `first` carry on the same fleet)."""
    path = "/agents/heartbeat" if heartbeats_of else "/ingest"
    return subprocess.Popen(
        [sys.executable, str(HERE / "loadgen.py"), "--url", f"http://127.0.0.1:{port}{path}",
         "--key", key, "--rate", str(rate), "--seconds", str(seconds),
         "--nonce", nonce or secrets.token_hex(4), "--max-in-flight", "256",
         "--heartbeats", str(heartbeats_of), "--first", str(first)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_paced_ingest(proc: subprocess.Popen, timeout: float = 60) -> dict:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    return {"error": out[-500:]}


def fleet_phase(args, env: dict, rundir: Path, keys: dict) -> dict:
    """Heartbeats of FLEET_AGENTS agents at FLEET_HEARTBEATS_PER_S, alone and then with
    FLEET_SIGNALS_PER_S signals, on a fresh database: bytes written per heartbeat and per
    signal, CPU per heartbeat, the largest WAL, history rows per agent per week."""
    db = rundir / "fleet.db"
    port = free_port()
    speedup = AGENT_INTERVAL_S * FLEET_HEARTBEATS_PER_S / FLEET_AGENTS
    sample_s = DEFAULT_HEARTBEAT_SAMPLE_S / speedup
    server = Process("fleet", [args.server, "serve"],
                     {**env, "SANTAMON_DB_PATH": str(db), "SANTAMON_PORT": str(port),
                      "SANTAMON_HEARTBEAT_SAMPLE": f"{sample_s:g}s"}, port, rundir)
    alone_s, mixed_s = args.fleet_seconds / 3, args.fleet_seconds * 2 / 3
    nonce = secrets.token_hex(4)
    wal = LargestSize(Path(str(db) + "-wal"))
    result: dict = {"agents": FLEET_AGENTS, "target_heartbeats_per_s": FLEET_HEARTBEATS_PER_S,
                    "target_signals_per_s": FLEET_SIGNALS_PER_S, "speedup": speedup,
                    "heartbeat_sample_s": sample_s, "server": args.server}
    sent = 0

    def heartbeats(seconds: float) -> subprocess.Popen:
        return start_paced_ingest(port, keys["agent"], FLEET_HEARTBEATS_PER_S, seconds,
                                  heartbeats_of=FLEET_AGENTS, nonce=nonce, first=sent)

    def finished(proc: subprocess.Popen) -> dict:
        outcome = finish_paced_ingest(proc, timeout=args.fleet_seconds + 60)
        if "error" in outcome:
            raise RuntimeError(f"load generator failed: {outcome['error']}")
        return outcome

    try:
        server.start()
        wal.start()
        warm_s = FLEET_AGENTS / FLEET_HEARTBEATS_PER_S + 1
        log(f"fleet: warm-up, every one of {FLEET_AGENTS} agents heard from ({warm_s:.1f} s)")
        warm = finished(heartbeats(warm_s))
        sent += warm["sent"] + warm["skipped"]
        time.sleep(FLEET_SETTLE_S)

        log(f"fleet: {FLEET_HEARTBEATS_PER_S} heartbeats/s alone for {alone_s:.0f} s")
        started_s = time.time()
        before = proc_counters(server.pid, port, keys["admin"])
        alone = finished(heartbeats(alone_s))
        sent += alone["sent"] + alone["skipped"]
        time.sleep(FLEET_SETTLE_S)
        middle = proc_counters(server.pid, port, keys["admin"])

        log(f"fleet: the same with {FLEET_SIGNALS_PER_S} signals/s for {mixed_s:.0f} s")
        beats = heartbeats(mixed_s)
        signals = start_paced_ingest(port, keys["agent"], FLEET_SIGNALS_PER_S, mixed_s)
        mixed = finished(beats)
        sent += mixed["sent"] + mixed["skipped"]
        mixed_signals = finished(signals)
        time.sleep(FLEET_SETTLE_S)
        after = proc_counters(server.pid, port, keys["admin"])
        result["rss"] = rss_mb(server.pid)
    finally:
        wal.stopped.set()
        server.stop()

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        since = datetime.fromtimestamp(started_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        (rows,) = conn.execute("SELECT count(*) FROM heartbeats WHERE received_at >= ?",
                               (since,)).fetchone()
        (total_rows,) = conn.execute("SELECT count(*) FROM heartbeats").fetchone()
        kept = conn.execute("SELECT agent_id, received_at FROM heartbeats "
                            "ORDER BY agent_id, received_at").fetchall()
    # An agent's history rows in the steady state, from the median time between two of them:
    # they follow either its heartbeats (a server that keeps every one) or the sample interval
    # (this one). The fleet beats faster than real agents and the sample is shortened to
    # match, so the gap is scaled back to what an agent beating every 30 s would leave. (A run
    # holds only a few sample intervals: counting its rows would mostly count its edges.)
    gaps = [(_epoch(later) - _epoch(earlier)) for (agent, earlier), (same, later)
            in itertools.pairwise(kept) if agent == same]
    beating_s = alone["seconds"] + mixed["seconds"]
    heartbeat_every_s = beating_s * FLEET_AGENTS / max(1, alone["ok"] + mixed["ok"])
    row_gap_s = statistics.median(gaps) if gaps else None
    if row_gap_s is None:
        real_row_gap_s = None
    elif row_gap_s >= sample_s:
        real_row_gap_s = row_gap_s * speedup
    else:
        real_row_gap_s = max(1.0, row_gap_s / heartbeat_every_s) * AGENT_INTERVAL_S
    alone_bytes = middle["write_bytes"] - before["write_bytes"]
    per_heartbeat = alone_bytes / max(1, alone["ok"])
    mixed_bytes = after["write_bytes"] - middle["write_bytes"]
    per_signal = (mixed_bytes - per_heartbeat * mixed["ok"]) / max(1, mixed_signals["ok"])
    result.update({
        "heartbeats_alone": alone, "heartbeats_with_signals": mixed, "signals": mixed_signals,
        "bytes_per_heartbeat": round(per_heartbeat),
        "bytes_per_signal": round(per_signal),
        "write_mb_per_s_alone": round(alone_bytes / 1e6 / (alone["seconds"] + FLEET_SETTLE_S), 2),
        "write_mb_per_s_with_signals": round(mixed_bytes / 1e6
                                             / (mixed["seconds"] + FLEET_SETTLE_S), 2),
        "cpu_ms_per_heartbeat": round((middle["cpu_s"] - before["cpu_s"]) * 1000
                                      / max(1, alone["ok"]), 4),
        "wal_max_mb": round(wal.largest / 1e6, 1), "wal_samples": wal.samples,
        "history_rows_in_run": rows, "history_rows_total": total_rows,
        "history_row_gap_s": row_gap_s, "heartbeat_every_s": round(heartbeat_every_s, 2),
        "history_rows_per_agent_per_week": round(WEEK_S / real_row_gap_s)
        if real_row_gap_s else None,
        "commits_per_s_alone": round((middle["commits"] - before["commits"])
                                     / (alone["seconds"] + FLEET_SETTLE_S), 1),
        "commits_per_s_with_signals": round((after["commits"] - middle["commits"])
                                            / (mixed["seconds"] + FLEET_SETTLE_S), 1),
        "db_size_mb": db_size_mb(db),
    })
    log(f"fleet: {result['bytes_per_heartbeat']} B/heartbeat, {result['bytes_per_signal']} "
        f"B/signal, {result['cpu_ms_per_heartbeat']} ms CPU/heartbeat, WAL max "
        f"{result['wal_max_mb']} MB, {result['history_rows_per_agent_per_week']} history "
        "rows/agent/week")
    return result


def _cpu(cpu: dict[str, float], unit: str) -> str:
    return "CPU " + " + ".join(f"{name} {us:.0f}" for name, us in cpu.items()) + f" us/{unit}"


# A line of the printed table: what, the figure, the goal, whether it is met (None: no goal).
Row = tuple[str, str, str, bool | None]


def cpu_rows(report: dict, goals: dict) -> list[Row]:
    """Issue 15: the server's CPU per request (per signal in batches) beside the ceiling's."""
    rows: list[Row] = []
    for key, label, ratio_goal, rate_goal in (
            ("ingest_empty", "empty file", goals["cpu_ratio_empty"], None),
            ("ingest", f"{report['settings']['signals']:,} file", goals["cpu_ratio_full"],
             goals["batch_signals_per_s_full"])):
        if key not in report:
            continue
        single, batch = report[key]["single"], report[key]["batch"]
        ceiling = single["ceiling"]["cpu_us_per_request"]["server"]
        own = single["santamon"]["cpu_us_per_request"]["server"]
        rows.append((f"CPU/request 1/request, {label}",
                     f"santamon {own:.0f} us, ceiling {ceiling:.0f} us: {own / ceiling:.2f}x  "
                     f"(p99 {single['santamon']['p99_ms']} ms)",
                     f"<= {ratio_goal}x", own / ceiling <= ratio_goal))
        b = batch["santamon"]
        ok = b["cpu_us_per_signal"]["server"] <= goals["batch_cpu_us"]
        if rate_goal is not None:
            ok = ok and b["signals_per_s"] >= rate_goal
        rows.append((f"CPU/signal batch x500, {label}",
                     f"santamon {b['cpu_us_per_signal']['server']:.0f} us, ceiling "
                     f"{batch['ceiling']['cpu_us_per_signal']['server']:.0f} us; "
                     f"{b['signals_per_s']:.0f} signals/s",
                     f"<= {goals['batch_cpu_us']} us" + (f", >= {rate_goal}/s" if rate_goal
                                                         else ""), ok))
        if "heartbeat" in report[key]:
            beat = report[key]["heartbeat"]["cpu_us_per_request"]["server"]
            rows.append((f"CPU/heartbeat, {label}",
                         f"{beat:.0f} us: {beat / ceiling:.2f}x the ceiling's per signal "
                         f"({report[key]['heartbeat']['req_per_s']:.0f} req/s)",
                         f"<= {goals['heartbeat_cpu_ratio']}x",
                         beat / ceiling <= goals["heartbeat_cpu_ratio"]))
    return rows


def durability_rows(part: dict, engine: str = "") -> list[Row]:
    """The SIGKILL check of one engine's part of the report, if it ran."""
    if "durability" not in part:
        return []
    d = part["durability"]
    return [(f"{engine}durable after SIGKILL", f"{d['acknowledged']} acked, "
             f"{d['missing_after_sigkill']} missing", "0 missing", d["durable"])]


def query_rows(part: dict, goals: dict, engine: str = "") -> list[Row]:
    """Each query kind's p50/p95, idle and under ingest, against its goal."""
    rows: list[Row] = []
    for phase, goal in (("queries_idle", goals["query_p95_ms"]),
                        ("queries_under_ingest", goals["query_p95_under_ingest_ms"])):
        for kind, q in part.get(phase, {}).items():
            if kind.startswith("_"):  # what the phase says of itself, not a query kind
                continue
            err = f"  errors {q['errors']}" if q["errors"] else ""
            ok = not q["errors"] and q["p95_ms"] is not None and q["p95_ms"] <= goal
            rows.append((f"{engine}{'idle' if phase == 'queries_idle' else 'ingest'}: {kind}",
                         f"p50 {q['p50_ms']} ms  p95 {q['p95_ms']} ms  (n={q['n']}, "
                         f"rows={q['rows']}){err}", f"p95 <= {goal} ms", ok))
    return rows


def postgres_rows(pg: dict, goals: dict) -> list[Row]:
    rows: list[Row] = []
    rows.append(("PostgreSQL: first start on the migrated copy",
                 f"{pg.get('first_start_s')} s (server ready in {pg.get('server_ready_s')} s)",
                 "", None))
    ingest = pg.get("ingest", {})
    single = ingest.get("single", {})
    sqlite_rate = single.get("sqlite", {}).get("req_per_s")
    for name, result in single.items():
        workers = 2 if "2 workers" in name else 1
        per_worker = result["req_per_s"] / workers
        ok = None if name == "sqlite" or sqlite_rate is None else per_worker >= sqlite_rate
        rows.append((f"ingest 1/request, {name}",
                     f"{result['req_per_s']:.0f} req/s ({per_worker:.0f}/worker)  p99 "
                     f"{result['p99_ms']} ms  {_cpu(result['cpu_us_per_request'], 'request')}"
                     + (f"  non-2xx {result['non_2xx']}" if result["non_2xx"] else ""),
                     "" if ok is None else ">= SQLite/worker", ok))
    for name, result in ingest.get("batch", {}).items():
        rows.append((f"batch ingest x500, {name}",
                     f"{result['signals_per_s']:.0f} signals/s  "
                     f"{_cpu(result['cpu_us_per_signal'], 'signal')}"
                     + (f"  non-2xx {result['non_2xx']}" if result["non_2xx"] else ""),
                     "", None))
    rows += durability_rows(pg, "PostgreSQL: ") + query_rows(pg, goals, "PG ")
    if "background_ingest" in pg:
        b = pg["background_ingest"]
        rows.append(("PG background ingest achieved", f"{b.get('achieved_per_s')} signals/s "
                     f"(failed {b.get('failed')}, p99 {b.get('p99_ms')} ms)", "", None))
    if "db_size_mb" in pg:
        rows.append(("PostgreSQL database size", f"{pg['db_size_mb']} MB", "", None))
    return rows


def print_table(report: dict) -> None:
    rows: list[Row] = []
    ingest = report.get("ingest", {})
    single = ingest.get("single")
    goals = report["goals"]
    if single:
        for name in ("ceiling", "santamon"):
            s = single[name]
            ok = None if name == "ceiling" else (s["p99_ms"] <= goals["ingest_p99_ms"]
                                                 and s["non_2xx"] == 0)
            rows.append((f"ingest 1/request, {name}",
                         f"{s['req_per_s']:.0f} req/s  p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms"
                         + (f"  non-2xx {s['non_2xx']}" if s["non_2xx"] else ""),
                         "" if name == "ceiling" else f"p99 <= {goals['ingest_p99_ms']} ms", ok))
        rows.append(("ingest ratio santamon/ceiling", f"{single['ratio']:.2f}",
                     f">= {goals['ingest_ratio']}", single["ratio"] >= goals["ingest_ratio"]))
    for name, b in ingest.get("batch", {}).items():
        ok = None if name == "ceiling" else (b["signals_per_s"] >= goals["batch_signals_per_s"]
                                             and b["non_2xx"] == 0)
        rows.append((f"batch ingest x500, {name}", f"{b['signals_per_s']:.0f} signals/s"
                     + (f"  non-2xx {b['non_2xx']}" if b["non_2xx"] else ""),
                     "" if name == "ceiling" else f">= {goals['batch_signals_per_s']}", ok))
    rows += cpu_rows(report, goals)
    rows += durability_rows(report)
    if "first_open" in report:
        f = report["first_open"]
        rows.append(("first open of seed file", f"{f['seconds']:.1f} s (2nd start "
                     f"{f['second_start_s']:.1f} s)", f"<= {goals['first_open_s']} s",
                     f["seconds"] <= goals["first_open_s"]))
    rows += query_rows(report, goals)
    if "background_ingest" in report:
        b = report["background_ingest"]
        rows.append(("background ingest achieved", f"{b.get('achieved_per_s')} signals/s "
                     f"(failed {b.get('failed')}, not sent {b.get('skipped')}, "
                     f"p99 {b.get('p99_ms')} ms)", f"{report['settings']['ingest_rate']:.0f}/s",
                     (b.get("achieved_per_s") or 0) >= 0.95 * report["settings"]["ingest_rate"]
                     and not b.get("failed")))
    for key, label in (("rss_after_queries", "server RSS after the idle queries"),
                       ("rss_after_ingest", "server RSS after ingest (queries ran before)"),
                       ("rss", "server RSS after the run (restarted after SIGKILL)")):
        if key in report:
            rss = report[key]
            rows.append((label, f"{rss.get('VmRSS')} MB (peak {rss.get('VmHWM')} MB)",
                         f"<= {goals['rss_mb']} MB", (rss.get("VmRSS") or 1e9) <= goals["rss_mb"]))
    if "db_size_mb" in report:
        rows.append(("database size", ", ".join(f"{k} {v} MB" for k, v in
                                                report["db_size_mb"].items()), "", None))
    if "wal_max_mb" in report:
        rows.append(("largest WAL (SQLite phases)", f"{report['wal_max_mb']} MB",
                     f"<= {goals['fleet_wal_mb']} MB",
                     report["wal_max_mb"] <= goals["fleet_wal_mb"]))
    if "fleet" in report:
        f = report["fleet"]
        alone, mixed, sig = f["heartbeats_alone"], f["heartbeats_with_signals"], f["signals"]
        rows += [
            ("fleet: heartbeats/s achieved", f"{alone['achieved_per_s']} alone, "
             f"{mixed['achieved_per_s']} with {sig['achieved_per_s']} signals/s (failed "
             f"{alone['failed'] + mixed['failed'] + sig['failed']})",
             f"~{FLEET_HEARTBEATS_PER_S}", None),
            ("fleet: disk bytes written per heartbeat", f"{f['bytes_per_heartbeat']:,} B",
             f"<= {goals['fleet_bytes_per_heartbeat']:,} B",
             f["bytes_per_heartbeat"] <= goals["fleet_bytes_per_heartbeat"]),
            ("fleet: disk bytes written per signal", f"{f['bytes_per_signal']:,} B",
             f"<= {goals['fleet_bytes_per_signal']:,} B",
             f["bytes_per_signal"] <= goals["fleet_bytes_per_signal"]),
            ("fleet: largest WAL", f"{f['wal_max_mb']} MB", f"<= {goals['fleet_wal_mb']} MB",
             f["wal_max_mb"] <= goals["fleet_wal_mb"]),
            ("fleet: history rows per agent per week",
             f"{f['history_rows_per_agent_per_week'] or 0:,}",
             f"<= {goals['fleet_history_rows_per_week']:,}",
             (f["history_rows_per_agent_per_week"] or 0)
             <= goals["fleet_history_rows_per_week"]),
            ("fleet: commits per second", f"{f['commits_per_s_alone']} alone, "
             f"{f['commits_per_s_with_signals']} with signals", "", None),
            ("fleet: server CPU per heartbeat", f"{f['cpu_ms_per_heartbeat'] * 1000:.0f} us",
             f"<= {goals['fleet_cpu_us_per_heartbeat']} us",
             f["cpu_ms_per_heartbeat"] * 1000 <= goals["fleet_cpu_us_per_heartbeat"]),
        ]
    if "postgres" in report:
        rows += postgres_rows(report["postgres"], goals)
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    print(f"{'measure'.ljust(width)}  {'result'.ljust(value_width)}  {'goal'.ljust(16)}  met")
    print(f"{'-' * width}  {'-' * value_width}  {'-' * 16}  ---")
    for label, value, goal, ok in rows:
        verdict = "" if ok is None else "yes" if ok else "NO"
        print(f"{label.ljust(width)}  {value.ljust(value_width)}  {goal.ljust(16)}  {verdict}")
    print()


def seed_phases(args, phases: set[str], report: dict, env: dict, rundir: Path, ackdir: Path,
                keys: dict) -> None:
    """Phases 1-7, on a copy of the seed file of `args.signals` signals: on SQLite, then on
    PostgreSQL."""
    results = args.results
    seconds_per_kind = 10 if args.quick else 20
    if args.db is not None:
        seed = args.db
        meta_path = generate.cached_database_path(args.signals, results).with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    else:
        seed = generate.cached_database(args.signals, results, log=log)
        meta = json.loads(seed.with_suffix(".json").read_text())
    db_path = rundir / "santamon.db"
    sqlite = "sqlite" in phases
    if sqlite:
        log(f"copying {seed.name} ({seed.stat().st_size / 1e6:.0f} MB) to {db_path}")
        shutil.copyfile(seed, db_path)
    plan, plan_info = query_plan(db_path if sqlite else seed, meta)
    report["dataset"] = {**meta, **plan_info}

    port, ceiling_port = free_port(), free_port()
    real = Process("santamon", [args.server, "serve"],
                   {**env, "SANTAMON_DB_PATH": str(db_path), "SANTAMON_PORT": str(port)},
                   port, rundir)
    ceiling = Process("ceiling", [sys.executable, str(HERE / "ceiling_app.py"), "--port",
                                  str(ceiling_port), "--api-key", keys["agent"]],
                      {**env, "SANTAMON_API_KEY": keys["agent"]}, ceiling_port, rundir)
    wal = LargestSize(Path(str(db_path) + "-wal"))
    wal.start()
    try:
        if sqlite:
            sqlite_phases(args, phases, report, real, ceiling, plan, keys, db_path, ackdir,
                          seconds_per_kind)
        if "postgres" in phases:
            report["postgres"] = postgres_phases(args, phases, seed, plan, keys, env, rundir,
                                                 real if sqlite else None, seconds_per_kind)
    finally:
        wal.stopped.set()
        real.stop()
        ceiling.stop()
    if sqlite:
        report["wal_max_mb"] = round(wal.largest / 1e6, 1)


def _interrupted(signum: int, _frame) -> None:
    # also for SIGINT: a shell starting us in the background leaves SIGINT ignored
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupted)  # so `finally` stops the servers we started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true",
                        help="one short ingest round and fewer query samples")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds per wrk round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--batch-duration", type=float, default=None)
    parser.add_argument("--clients", type=int, default=8, help="concurrent query clients")
    parser.add_argument("--queries", type=int, default=None, help="requests per query kind")
    parser.add_argument("--ingest-rate", type=float, default=500)
    parser.add_argument("--results", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--server", default=str(ROOT / ".venv" / "bin" / "santamon"))
    parser.add_argument("--db", type=Path, default=None,
                        help="start from a copy of this database instead of the generated seed "
                             "file (e.g. one already upgraded, to iterate on ingest quickly)")
    parser.add_argument("--skip", action="append", default=[], choices=PHASES,
                        help="leave a phase out (repeatable); sqlite and postgres leave an "
                             "engine out, workers the run with --workers 2")
    parser.add_argument("--only", action="append", default=[], choices=PHASES,
                        help="run only these phases (repeatable); `--only fleet` needs no seed")
    parser.add_argument("--fleet-seconds", type=float, default=90,
                        help="heartbeat fleet: a third alone, two thirds with signals")
    args = parser.parse_args()
    phases = set(args.only or PHASES)
    if not phases & set(ENGINE_PHASES):  # `--only queries` means on every engine
        phases |= set(ENGINE_PHASES)
    phases -= set(args.skip)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (5 if args.quick else 10)
    args.batch_duration = args.batch_duration or (5 if args.quick else 10)
    args.queries = args.queries or (80 if args.quick else 200)
    if shutil.which("wrk") is None and phases & {"ingest"}:
        print("wrk is not installed (apt-get install wrk, or run `make bench`)", file=sys.stderr)
        return 2
    if not Path(args.server).exists():
        print(f"{args.server} missing: build the venv first (make bench does)", file=sys.stderr)
        return 2

    results = args.results
    rundir = results / "run"
    shutil.rmtree(rundir, ignore_errors=True)
    ackdir = rundir / "acked"
    ackdir.mkdir(parents=True)
    keys, env = keys_and_env()
    report: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    # others' work on a shared machine shows here
                    "load_average_at_start": os.getloadavg()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "goals": {"ingest_ratio": 0.75, "ingest_p99_ms": 25, "batch_signals_per_s": 30000,
                  "query_p95_ms": 50, "query_p95_under_ingest_ms": 100, "rss_mb": 200,
                  "first_open_s": 120, **FLEET_GOALS,
                  # issue 15: server CPU per request against the ceiling's
                  "cpu_ratio_empty": 2.0, "cpu_ratio_full": 2.5, "batch_cpu_us": 40,
                  "batch_signals_per_s_full": 20000, "heartbeat_cpu_ratio": 1.5},
    }
    if phases & set(SEED_PHASES):
        seed_phases(args, phases, report, env, rundir, ackdir, keys)
    if "fleet" in phases:
        report["fleet"] = fleet_phase(args, env, rundir, keys)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["machine"]["load_average_at_end"] = os.getloadavg()
    (results / "report.json").write_text(json.dumps(report, indent=2))
    print_table(report)
    log(f"wrote {results / 'report.json'}")
    return 0


def sqlite_phases(args, phases: set[str], report: dict, real: Process, ceiling: Process,
                  plan: list, keys: dict, db_path: Path, ackdir: Path,
                  seconds_per_kind: float) -> None:
    """On the SQLite file: first open, queries, ingest beside the ceiling app, SIGKILL,
    queries under ingest. The server keeps running for the PostgreSQL comparison."""
    port = real.port
    base = f"http://127.0.0.1:{port}"
    admin_headers = {"Authorization": f"Bearer {keys['admin']}"}
    log(f"first start of santamon on the seed copy (upgrade), port {port}")
    first = real.start()
    real.stop()
    second = real.start()
    report["first_open"] = {"seconds": round(first, 2), "second_start_s": round(second, 2)}
    log(f"first open {first:.1f} s, second start {second:.1f} s")
    report["db_size_after_upgrade_mb"] = db_size_mb(db_path)
    ceiling.start()

    if "queries" in phases:
        plan = with_deep_pages(base, admin_headers, args, plan, report)
        log(f"queries, idle, {args.clients} clients")
        report["queries_idle"] = asyncio.run(measure_queries(
            base, admin_headers, plan, args.clients, args.queries, seconds_per_kind))
        report["rss_after_queries"] = rss_mb(real.pid)

    if "ingest" in phases:
        report["ingest_empty"] = empty_file_ingest(real, ceiling, args, keys)
        report["ingest"] = ingest_phase(real, ceiling, args, keys, ackdir)
        nonces = [r["nonce"] for r in report["ingest"]["single"]["santamon"]["rounds"]]
        nonces.append(report["ingest"]["batch"]["santamon"]["nonce"])
        report["rss_after_ingest"] = rss_mb(real.pid)
        log("SIGKILL the server, then look for every acknowledged id in the file")
        real.stop(kill=True)
        report["durability"] = check_durable(db_path, ackdir, nonces)
        log(f"durability: {report['durability']}")
        restart = real.start()
        report["restart_after_kill_s"] = round(restart, 2)

    if "under-ingest" in phases and "queries" in phases:
        report.update(queries_under_ingest(args, port, keys, plan, seconds_per_kind))

    report["rss"] = rss_mb(real.pid)
    report["db_size_mb"] = db_size_mb(db_path)


if __name__ == "__main__":
    sys.exit(main())
