"""What storing a signal costs SQLite on a big file, apart from HTTP: the writer's own insert
(`writes.insert_new_signals`, so indexes and triggers included) in commits of 50 signals,
as the group commit averages under load, with the writer's pragmas.

Prints wall and CPU microseconds per signal (CPU is what a loaded machine cannot blur). To
compare two versions, run it with each one's package first on the path against a copy of the
same database, upgraded by that version:

    .venv/bin/python tests/benchmarks/insert_cost.py COPY.db
    PYTHONPATH=/path/to/other/checkout .venv/bin/python tests/benchmarks/insert_cost.py COPY2.db
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import time

import orjson

from santamon.domain.signals import NewSignal
from santamon.store.sqlite.store import WRITER_PRAGMAS
from santamon.store.sqlite.writes import insert_new_signals

CONTEXT = orjson.dumps({"actor_path": "/usr/bin/curl", "kind": "execution",
                        "padding": "x" * 1500})  # a typical context's size


def signal(nonce: str, n: int) -> NewSignal:
    return NewSignal(
        signal_id=f"{nonce}-{n}", ts=f"2099-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n:09d}Z",
        host_id=f"mbp-bench-{n * 7919 % 2000:04d}", rule_id=f"SM-0{n % 30:02d}",
        severity="high", title="curl piped to shell", tags_json=b"[]", context_json=CONTEXT,
        rule_description=None)


def one_run(path: str, count: int, per_commit: int) -> tuple[float, float]:
    conn = sqlite3.connect(path, isolation_level="IMMEDIATE")
    for setting in WRITER_PRAGMAS:
        conn.execute(f"PRAGMA {setting}").fetchall()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    nonce = os.urandom(4).hex()
    now = "2099-01-01T00:00:00.000000000Z"
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, count, per_commit):
        insert_new_signals(conn, [signal(nonce, n) for n in range(start, start + per_commit)],
                           now)
        conn.commit()
    result = ((time.perf_counter() - wall) / count * 1e6,
              (time.process_time() - cpu) / count * 1e6)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="an upgraded copy: the signals inserted stay in it")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--per-commit", type=int, default=50)
    args = parser.parse_args()
    runs = [one_run(args.db, args.signals, args.per_commit) for _ in range(args.runs)]
    print(f"{args.db}: median {statistics.median(r[0] for r in runs):.0f} us wall, "
          f"{statistics.median(r[1] for r in runs):.0f} us CPU per signal "
          f"({args.runs} runs of {args.signals})")


if __name__ == "__main__":
    main()
