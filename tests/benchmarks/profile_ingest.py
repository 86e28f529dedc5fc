"""Where one ingest request's server CPU goes, stage by stage (issue 15).

Starts a real `santamon serve` on a copy of a database (or a new empty file), loads it with wrk
(ingest.lua: agent-shaped signals, 32 connections), measures the server's CPU time per request
from /proc/PID/stat in one run, then samples it with `py-spy record --native` (needs root or
ptrace rights; `pip install -e '.[bench]'`) in a second run, and splits that CPU time into the
stages of the request path by the frames on each sample's stack.

    .venv/bin/python tests/benchmarks/profile_ingest.py                    # empty file
    .venv/bin/python tests/benchmarks/profile_ingest.py --db UPGRADED.db   # a copy of it
    .venv/bin/python tests/benchmarks/profile_ingest.py --mode heartbeat

Samples of a thread that waits (a lock, the GIL, epoll) are left out; a thread that is ready to
run but has no core counts as running, so on a busy machine the shares are approximate, the
CPU per request is not. Prints a Markdown table; the raw profile stays in --out.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

# A sample whose stack holds one of these is a thread waiting, not working.
WAITING = ("PyThread_acquire_lock_timed", "take_gil", "pthread_cond_timedwait",
           "pthread_cond_wait", "uv__io_poll", "epoll_wait", "clock_nanosleep")
# (stage, frame texts): a working sample belongs to the first stage any of whose texts is in
# one of its frames; the more specific stages come first.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("fsync (writer thread; mostly the disk)", ("fdatasync", "fsync")),
    ("commit: WAL frames, checksums (writer thread)", ("pysqlite_connection_commit",)),
    ("SQLite insert, indexes, triggers (writer thread)", ("insert_new_signals",
                                                          "RecordHeartbeat.apply")),
    ("writer thread: queue, answers", ("Writer._run",)),
    ("log thread (renders and writes the log lines)", ("_Writer._monitor",)),
    ("timestamp normalisation", ("(santamon/timeutil.py",)),
    ("context serialisation", ("encode_context", "shorten_context")),
    ("pydantic validation", ("model_validate_json", "validate_json")),
    ("metrics", ("prometheus_client", "(santamon/metrics.py")),
    ("request log", ("log_request", "(santamon/logs.py", "(logging/")),
    ("auth + agent guard", ("(santamon/api/auth/",)),
    ("writer hand-off (loop side)", ("(santamon/store/", "Writer.submit", "Writer._settle")),
    ("silences, shortening checks, building the row", ("(santamon/api/views/",
                                                       "(santamon/api/silencing.py",
                                                       "(santamon/domain/")),
    ("response (headers, JSON, socket write)", (
        "json_response", "prepare (aiohttp", "_prepare_hook", "security_headers", "write_eof",
        "_write_headers", "send_headers", "finish_response", "(santamon/api/responses.py")),
    ("body read", ("_read_body", "readany")),
    ("HTTP parsing", ("data_received", "http_parser", "HttpRequestParser", "feed_data")),
    ("middlewares (own code)", ("(santamon/api/middlewares.py",)),
    ("aiohttp request machinery", ("(aiohttp/",)),
]
OTHER = "event loop, tasks, other"


def stage_of(frames: list[str]) -> str | None:
    """The stage of one sample's stack (root first), or None for a waiting thread."""
    if any(wait in frame for frame in frames for wait in WAITING):
        return None
    for stage, texts in STAGES:
        if any(text in frame for frame in frames for text in texts):
            return stage
    return OTHER


def breakdown(raw: Path) -> Counter[str]:
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and (stage := stage_of(stack.split(";"))) is not None:
            samples[stage] += int(count)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="copied first; default: a new empty file")
    parser.add_argument("--mode", choices=["single", "batch", "heartbeat"], default="single")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--server", default=str(run.ROOT / ".venv" / "bin" / "santamon"))
    parser.add_argument("--out", type=Path, default=run.ROOT / "bench-results" / "profile")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="santamon-profile-", dir=args.out))
    db = workdir / "santamon.db"
    if args.db is not None:
        shutil.copyfile(args.db, db)
    keys, env = run.keys_and_env()
    key = keys["agent"]
    port = run.free_port()
    env.update(SANTAMON_PORT=str(port), SANTAMON_DB_PATH=str(db))
    server = run.Process("santamon", [args.server, "serve"], env, port, workdir)
    path = "/agents/heartbeat" if args.mode == "heartbeat" else "/ingest"
    unit = "signal" if args.mode == "batch" else "request"
    raw = args.out / f"{args.mode}.raw"
    server.start()
    try:
        def load() -> dict:
            return run.run_wrk(f"http://127.0.0.1:{port}{path}", args.mode, key, None,
                               args.seconds, args.connections, 2, cpu={"server": server.pids})

        measured = load()  # unprofiled: the CPU figure
        spy = subprocess.Popen([py_spy, "record", "--pid", str(server.pid), "--native",
                                "--rate", str(args.rate), "--duration",
                                str(round(args.seconds) - 2), "--format", "raw",
                                "--output", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        load()
        spy.wait(timeout=60)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    cpu_us = measured[f"cpu_us_per_{unit}"]["server"]
    samples = breakdown(raw)
    total = sum(samples.values()) or 1
    print(f"{args.mode} on {'a copy of ' + str(args.db) if args.db else 'an empty file'}: "
          f"{measured['req_per_s']:.0f} req/s, p99 {measured['p99_us'] / 1000:.1f} ms, "
          f"server CPU {cpu_us:.0f} us/{unit}; {total} working samples ({raw})\n")
    print(f"| stage | share of server CPU | us/{unit} |\n| --- | ---: | ---: |")
    for stage, count in samples.most_common():
        print(f"| {stage} | {100 * count / total:.1f} % | {cpu_us * count / total:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
