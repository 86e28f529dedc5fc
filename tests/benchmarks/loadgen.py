"""Paced background load in its own process: one agent-shaped signal, or one heartbeat of a
fleet of agents, per request at a fixed rate.

    python tests/benchmarks/loadgen.py --url http://127.0.0.1:PORT/ingest --key KEY \
        --rate 500 --seconds 60 --nonce 1a2b3c4d
    python tests/benchmarks/loadgen.py --url http://127.0.0.1:PORT/agents/heartbeat --key KEY \
        --heartbeats 5000 --rate 2000 --seconds 60

Prints one JSON line with what was sent, acknowledged and the achieved rate. Bounded by
--seconds; requests in flight are capped like an agent fleet would be.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import time

import aiohttp
import orjson

try:  # the server runs on uvloop; the load should not be the slower side
    import uvloop
except ImportError:  # pragma: no cover - the venv has it
    uvloop = None

OFFSETS = ["-08:00", "-05:00", "Z", "+01:00", "+05:30", "+09:00"]
RULES = [("SM-002", "critical", "SSH private keys read by non-ssh process"),
         ("SM-006", "medium", "Launch agent written"),
         ("SM-009", "info", "Developer tool executed"),
         ("SM-B01", "low", "Binary never seen on this host before")]


def make_signal(nonce: str, seq: int, offset: int = 0) -> bytes:
    seq += offset
    user = f"user{seq % 2000:04d}"
    rule_id, severity, title = RULES[seq % len(RULES)]
    digits = seq % 10
    frac = ("." + f"{seq:09d}"[-digits:].rstrip("0") + "1")[:digits + 1] if digits else ""
    ts = f"2026-11-{1 + seq % 28:02d}T{seq % 24:02d}:{seq % 60:02d}:{(seq * 7) % 60:02d}" \
         f"{frac}{OFFSETS[seq % len(OFFSETS)]}"
    tree = [{"relation": rel, "depth": depth, "pid": 4000 + depth + seq % 50000, "pidversion": 1,
             "path": path, "user": user, "uid": 501, "group": "staff", "gid": 20,
             "session_id": 100, "start_time": "2026-11-03T09:00:00-08:00"}
            for depth, (rel, path) in enumerate([("target", "/usr/local/bin/python3.12"),
                                                 ("parent", "/bin/zsh"),
                                                 ("ancestor", "/sbin/launchd")])]
    return orjson.dumps({
        "signal_id": f"{nonce}{seq:024d}", "ts": ts, "host_id": f"mbp-{user}",
        "rule_id": rule_id, "rule_description": "Paced background ingest.", "status": "open",
        "severity": severity, "title": title, "tags": ["bench", "background"],
        "context": {"actor_path": "/usr/local/bin/python3.12",
                    "target_path": f"/Users/{user}/.ssh/id_ed25519", "kind": "file_access",
                    "decision": "DECISION_ALLOW", "execution.args": ["python3", "x.py"],
                    "process_tree": tree}})


HEARTBEAT_EPOCH_S = 1_790_000_000
AGENT_INTERVAL_S = 30  # what a real agent waits between heartbeats


def heartbeat_maker(agents: int):
    """Heartbeat `seq` of a fleet of `agents` reporting in turn: agent `seq % agents`, its
    `seq // agents`-th beat, with the agent's clock and uptime moving 30 s per beat as a real
    agent's do (the server's clock moves faster when the fleet beats faster than that)."""
    def make(nonce: str, seq: int, offset: int = 0) -> bytes:
        beat, agent = divmod(offset + seq, agents)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(
            HEARTBEAT_EPOCH_S + beat * AGENT_INTERVAL_S + agent % AGENT_INTERVAL_S))
        return orjson.dumps({
            "agent_id": f"mbp-fleet-{nonce}-{agent:05d}", "timestamp": f"{ts}.25-08:00",
            "version": "v0.3.1", "os_version": "15.4.1",
            "uptime_seconds": 86_400.5 + beat * AGENT_INTERVAL_S})
    return make


async def paced(url: str, key: str, rate: float, seconds: float, nonce: str,
                max_in_flight: int, make_body=make_signal) -> dict:
    headers = {"X-API-Key": key, "Content-Type": "application/json",
               "User-Agent": "github.com/0x4d31/santamon/bench"}
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0}
    gate = asyncio.Semaphore(max_in_flight)
    tick = 0.01
    per_tick = rate * tick

    async def one(session: aiohttp.ClientSession, seq: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                async with session.post(url, data=make_body(nonce, seq),
                                        headers=headers) as resp:
                    await resp.read()
                    ok = 200 <= resp.status < 300
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            latencies.append(time.perf_counter() - started)
            counts["ok" if ok else "failed"] += 1

    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    tasks: set[asyncio.Task] = set()
    stop = asyncio.Event()  # SIGTERM/SIGINT end the run early but still report
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.perf_counter()
        owed = 0.0
        seq = 0
        while (elapsed := time.perf_counter() - start) < seconds and not stop.is_set():
            owed = rate * elapsed - seq
            for _ in range(int(min(owed, per_tick * 5))):
                if len(tasks) >= max_in_flight * 4:  # the server fell behind; do not pile up
                    counts["skipped"] += 1
                    seq += 1
                    continue
                task = asyncio.create_task(one(session, seq))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                seq += 1
                counts["sent"] += 1
            await asyncio.sleep(tick)
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        wall = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) \
            if latencies else None

    return {**counts, "seconds": round(wall, 2), "achieved_per_s": round(counts["ok"] / wall, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--nonce", default="b0b0b0b0")
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument("--heartbeats", type=int, metavar="AGENTS", default=0,
                        help="send heartbeats of this many agents instead of signals")
    parser.add_argument("--first", type=int, default=0, metavar="SEQ",
                        help="number of the first request (a later run carries on a fleet)")
    args = parser.parse_args()
    make_body = heartbeat_maker(args.heartbeats) if args.heartbeats else make_signal
    run = asyncio.run if uvloop is None else uvloop.run
    result = run(paced(args.url, args.key, args.rate, min(args.seconds, 3600), args.nonce,
                       args.max_in_flight, functools.partial(make_body, offset=args.first)))
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
