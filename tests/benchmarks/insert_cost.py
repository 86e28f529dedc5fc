"""What storing a signal costs SQLite, apart from HTTP: the writer's own insert
(`writes.insert_new_signals`, so indexes and triggers included) in commits of N signals, with
the writer's pragmas, in WAL mode as the service runs it.

Signals are shaped as the agent sends them: random 32-hex ids (so the id index takes a random
page per signal, as in production), event times of a moment ago, 2,000 hosts, 30 rules, mixed
severities, a 1.5 KB context.
Prints wall and CPU microseconds per signal (CPU is what a loaded machine cannot blur).

    # a fresh upgraded file with 200,000 signals, then every index and trigger of `signals`
    # left out one at a time (each run on a new copy, variants in turns):
    .venv/bin/python tests/benchmarks/insert_cost.py /tmp/cost.db --create 200000 --structures

    # one file as it is (an upgraded copy of a seed, say):
    .venv/bin/python tests/benchmarks/insert_cost.py COPY.db --per-commit 10

To compare two versions of the code, run it with each one's package first on the path against
a copy of the same database, upgraded by that version.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import statistics
import time
from pathlib import Path

import aiosqlite
import orjson

from santamon import timeutil
from santamon.domain.signals import NewSignal
from santamon.store.sqlite.maintenance import file_paths
from santamon.store.sqlite.schema import migrate
from santamon.store.sqlite.store import WRITER_PRAGMAS
from santamon.store.sqlite.writes import insert_new_signals

CONTEXT = orjson.dumps({"actor_path": "/usr/bin/curl", "kind": "execution",
                        "padding": "x" * 1500})  # a typical context's size
SEVERITIES = ("critical", "high", "medium", "low")
NOW = "2099-01-01T00:00:00.000000000Z"
_random = random.Random()  # unseeded: a run never repeats an id already stored

# Each secondary structure a stored signal updates, and how to leave it out.
STRUCTURES = {
    "idx_signals_ts": ["DROP INDEX idx_signals_ts"],
    "idx_signals_status_ts": ["DROP INDEX idx_signals_status_ts"],
    "idx_signals_host_ts": ["DROP INDEX idx_signals_host_ts"],
    "idx_signals_rule_ts": ["DROP INDEX idx_signals_rule_ts"],
    "idx_signals_group": ["DROP INDEX idx_signals_group"],
    "counts trigger (signal, host, rule and title counts)": ["DROP TRIGGER signals_count_insert"],
    "group trigger (group_counts and its two indexes)": ["DROP TRIGGER signals_group_insert"],
    "idx_group_counts_walk (its entry moves with each newer signal)": [
        "DROP INDEX idx_group_counts_walk"],
    "idx_group_counts_host": ["DROP INDEX idx_group_counts_host"],
}


def signal(n: int) -> NewSignal:  # n: its place in the run
    return NewSignal(
        signal_id=_random.randbytes(16).hex(),
        ts=timeutil.format_utc(time.time_ns() + n),  # an event of a moment ago, as the agent's
        host_id=f"mbp-bench-{_random.randrange(2000):04d}",
        rule_id=f"SM-0{_random.randrange(30):02d}", severity=_random.choice(SEVERITIES),
        title="curl piped to shell", tags_json=b"[]", context_json=CONTEXT,
        rule_description=None)


def one_run(path: Path, count: int, per_commit: int) -> tuple[float, float]:
    """Microseconds of wall and CPU time per signal stored."""
    conn = sqlite3.connect(path, isolation_level="IMMEDIATE")
    for setting in WRITER_PRAGMAS:
        conn.execute(f"PRAGMA {setting}").fetchall()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    (before,) = conn.execute("SELECT count(*) FROM signals").fetchone()
    signals = [signal(n) for n in range(count)]
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, count, per_commit):
        insert_new_signals(conn, signals[start:start + per_commit], NOW)
        conn.commit()
    result = ((time.perf_counter() - wall) / count * 1e6,
              (time.process_time() - cpu) / count * 1e6)
    (after,) = conn.execute("SELECT count(*) FROM signals").fetchone()
    assert after - before == count, f"stored {after - before} of {count}"
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
    return result


async def _upgraded(path: Path) -> None:
    async with aiosqlite.connect(path) as conn:
        await migrate(conn)
        await conn.commit()


def remove(path: Path) -> None:
    """A database file and the WAL and shared memory beside it."""
    for file in file_paths(path):
        file.unlink(missing_ok=True)


def create(path: Path, signals: int) -> None:
    """A new file at the current schema, in WAL mode, holding `signals` signals."""
    remove(path)
    asyncio.run(_upgraded(path))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
    if signals:
        one_run(path, signals, 500)


def structures(path: Path, runs: int, count: int, per_commit: int) -> None:
    """Every structure left out in turn, each run on a fresh copy of `path`."""
    variants = {"all (as shipped)": [], **{f"without {name}": drops
                                           for name, drops in STRUCTURES.items()},
                "only the table and its signal_id index": [
                    drop for drops in STRUCTURES.values() for drop in drops]}
    copy = path.with_name(path.name + ".variant")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, drops in variants.items():
            remove(copy)
            shutil.copyfile(path, copy)
            with sqlite3.connect(copy) as conn:
                for drop in drops:
                    conn.execute(drop)
            results[name].append(one_run(copy, count, per_commit))
    remove(copy)
    print(f"{count} signals per run in commits of {per_commit}, {runs} runs per variant; "
          "us per signal\n\n| variant | CPU, median | CPU, each run | wall, median |\n"
          "| --- | ---: | --- | ---: |")
    for name, rows in results.items():
        cpu = [c for _, c in rows]
        print(f"| {name} | {statistics.median(cpu):.0f} | {' '.join(f'{c:.0f}' for c in cpu)} "
              f"| {statistics.median(w for w, _ in rows):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="an upgraded copy: the signals inserted stay in "
                        "it (with --structures they go to copies)")
    parser.add_argument("--create", type=int, metavar="N",
                        help="first make DB a new file holding N signals")
    parser.add_argument("--structures", action="store_true",
                        help="leave each index and trigger of signals out in turn")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--signals", type=int, default=5_000)
    parser.add_argument("--per-commit", type=int, default=10,
                        help="10 is what 32 connections of single signals give")
    args = parser.parse_args()
    if args.create is not None:
        create(args.db, args.create)
    if args.structures:
        structures(args.db, args.runs, args.signals, args.per_commit)
        return
    runs = [one_run(args.db, args.signals, args.per_commit) for _ in range(args.runs)]
    print(f"{args.db}: median {statistics.median(r[0] for r in runs):.0f} us wall, "
          f"{statistics.median(r[1] for r in runs):.0f} us CPU per signal "
          f"({args.runs} runs of {args.signals}, commits of {args.per_commit})")


if __name__ == "__main__":
    main()
