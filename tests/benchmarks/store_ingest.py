"""Ingest through the store alone (no HTTP), SQLite beside PostgreSQL: many concurrent callers
of one signal each, as requests arrive, and batches of 500.

    .venv/bin/python tests/benchmarks/store_ingest.py [--signals 20000] [--callers 32]
                                                      [--database-url postgresql://...]

Without --database-url it starts a throwaway PostgreSQL server (tests/pg.py) with PostgreSQL's
durable defaults (fsync on), as SQLite runs with synchronous=FULL. "PostgreSQL, a transaction
per call" stores each call on its own, to show what grouping concurrent calls is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from santamon.store import NewSignal, Store  # noqa: E402
from santamon.store.postgres import PostgresStore  # noqa: E402
from santamon.store.postgres.store import _insert_calls  # noqa: E402
from santamon.store.sqlite import SQLiteStore  # noqa: E402
from tests import pg  # noqa: E402

CONTEXT = orjson.dumps(orjson.loads(
    (ROOT / "tests" / "samples" / "signal-file-access.json").read_bytes())["context"])
BATCH = 500


def signals(prefix: str, count: int) -> list[NewSignal]:
    return [NewSignal(f"{prefix}-{n}", f"2026-11-03T22:{n // 60 % 60:02d}:{n % 60:02d}."
                      f"{n:09d}Z", f"mac-{n % 2000}", f"SM-{n % 40:03d}",
                      ("info", "low", "medium", "high", "critical")[n % 5],
                      f"Rule {n % 40} matched", b'["T1552"]', CONTEXT, None)
            for n in range(count)]


async def concurrent(insert: Callable[[list[NewSignal]], Awaitable[object]],
                     items: list[NewSignal], callers: int) -> tuple[float, float]:
    """Signals per second and p99 latency (ms) of `callers` callers storing one at a time."""
    latencies: list[float] = []
    queue = iter(items)

    async def caller() -> None:
        for item in queue:
            started = time.perf_counter()
            await insert([item])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    return len(items) / elapsed, statistics.quantiles(latencies, n=100)[98] * 1000


async def batches(store: Store, items: list[NewSignal]) -> float:
    started = time.perf_counter()
    for start in range(0, len(items), BATCH):
        await store.insert_signals(items[start:start + BATCH])
    return len(items) / (time.perf_counter() - started)


async def measure(name: str, store: Store, args: argparse.Namespace,
                  insert: Callable[[list[NewSignal]], Awaitable[object]] | None = None) -> None:
    await store.open()
    try:
        rate, p99 = await concurrent(insert or store.insert_signals,
                                     signals(f"{name}-one", args.signals), args.callers)
        batch_rate = await batches(store, signals(f"{name}-batch", args.signals))
    finally:
        await store.close()
    print(f"{name:<42} {rate:>8,.0f} signals/s (p99 {p99:5.1f} ms)   "
          f"batches of {BATCH}: {batch_rate:>8,.0f} signals/s", flush=True)


async def main(args: argparse.Namespace) -> None:
    server = None
    if args.database_url is None:
        server = pg.PostgresServer(durable=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            await measure("SQLite", SQLiteStore(Path(tmp) / "bench.db"), args)
        url = args.database_url or server.new_database()
        await measure("PostgreSQL, concurrent calls grouped", PostgresStore(url), args)
        url = args.database_url or server.new_database()
        store = PostgresStore(url)

        async def alone(items: list[NewSignal]) -> object:
            return await store._run(_insert_calls, [items], store._now(), write=True)

        await measure("PostgreSQL, a transaction per call", store, args, alone)
    finally:
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=32)
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use")
    asyncio.run(main(parser.parse_args()))
