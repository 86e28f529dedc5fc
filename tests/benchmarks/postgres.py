"""PostgreSQL for `make bench`: a server whose data directory is kept under bench-results/,
holding the seed database copied in once with `santamon migrate-db`, and what run.py needs to
measure against it (CPU time of process groups, acknowledged ids looked up after a SIGKILL).

The first run builds the cache (bench-results/pg-N/: the seed file upgraded, then
`santamon migrate-db` into database `seed`); every run then clones that database with
CREATE DATABASE ... TEMPLATE, PostgreSQL's own file-level copy, so the cache stays pristine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from santamon.store.postgres.schema import migrate  # noqa: E402
from tests import pg  # noqa: E402

SEED_DATABASE = "seed"
RUN_DATABASE = "bench_run"
# A server sized for the machine, as an operator would: the defaults (128 MB of shared
# buffers, 4 MB of work memory) are made for much smaller ones. fsync stays on.
SERVER_SETTINGS = {"shared_buffers": "1GB", "effective_cache_size": "4GB", "work_mem": "16MB",
                   "maintenance_work_mem": "256MB", "max_connections": "200",
                   "max_wal_size": "4GB", "log_min_messages": "warning"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cache_dir(results: Path, signals: int) -> Path:
    return results / f"pg-{signals}"


def start_server(results: Path, signals: int, seed: Path, server_bin: Path,
                 log: Callable[[str], None]) -> pg.PostgresServer:
    """The cached server, started; the first time, the seed file is migrated into it."""
    directory = cache_dir(results, signals)
    ready = directory / "seed-loaded"
    if not ready.exists() and directory.exists():
        log(f"{directory} holds an unfinished cache: building it again")
        shutil.rmtree(directory)
    server = pg.PostgresServer(durable=True, directory=directory, settings=SERVER_SETTINGS)
    server.start()
    try:
        if not ready.exists():
            _load_seed(server, seed, server_bin, directory, log)
            ready.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        # A cache built by an older version is brought to the current schema once, not in
        # every run's copy.
        seed_url = pg.with_database(server.url, SEED_DATABASE)
        if asyncio.run(_upgrade(seed_url)):
            log("upgraded the cached database to the current schema")
            pg.run_sql(seed_url, "VACUUM (ANALYZE)")
    except BaseException:
        server.stop()
        raise
    return server


async def _upgrade(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _load_seed(server: pg.PostgresServer, seed: Path, server_bin: Path, directory: Path,
               log: Callable[[str], None]) -> None:
    source = directory / "seed-copy.db"
    log(f"building the PostgreSQL cache in {directory}: copying {seed.name}")
    shutil.copyfile(seed, source)
    pg.run_sql(server.url, f"CREATE DATABASE {SEED_DATABASE} TEMPLATE template0")
    target = pg.with_database(server.url, SEED_DATABASE)
    log(f"santamon migrate-db --from {source.name} --to {target} (upgrades the copy first)")
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTAMON_")}
    result = subprocess.run([str(server_bin), "migrate-db", "--from", str(source), "--to",
                             target], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"migrate-db failed: {result.stdout}\n{result.stderr}")
    log(f"migrate-db took {time.monotonic() - started:.0f} s: {result.stdout.splitlines()[-2]}")
    (directory / "migrate-db.txt").write_text(
        f"seconds: {time.monotonic() - started:.1f}\n{result.stdout}")
    pg.run_sql(target, "VACUUM (ANALYZE)")
    source.unlink()


def fresh_run_database(server: pg.PostgresServer) -> str:
    """A copy of the seed database for this run (the previous run's is dropped first), read
    into memory once, as a server that has been running holds its hot pages (the SQLite copy
    is as warm after its first open rewrote it)."""
    pg.run_sql(server.url, f"DROP DATABASE IF EXISTS {RUN_DATABASE} WITH (FORCE)",
               f"CREATE DATABASE {RUN_DATABASE} TEMPLATE {SEED_DATABASE}")
    url = pg.with_database(server.url, RUN_DATABASE)
    pg.run_sql(url, "ANALYZE",  # statistics are not copied with the files
               "CREATE EXTENSION IF NOT EXISTS pg_prewarm",
               "SELECT pg_prewarm('signals', 'read')",  # into the OS cache
               "SELECT pg_prewarm(indexrelid) FROM pg_index "  # into shared buffers
               "WHERE indrelid = 'signals'::regclass")
    return url


def settle(url: str) -> None:
    """What autovacuum does some time after a burst of inserts (the visibility map, the
    planner's statistics), done now, so that it does not run in the middle of a measure."""
    pg.run_sql(url, "VACUUM (ANALYZE) signals")


def drop_run_database(server: pg.PostgresServer) -> None:
    pg.run_sql(server.url, f"DROP DATABASE IF EXISTS {RUN_DATABASE} WITH (FORCE)")


# -- CPU time ---------------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pids: list[int]) -> float:
    """User plus system time of these processes so far."""
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def processes(where: Callable[[list[str]], bool]) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None and where(fields):
            found.append(int(entry))
    return found


def process_group(pgid: int) -> list[int]:
    """A santamon server and, with --workers, its workers (run.py starts each in a group)."""
    return processes(lambda fields: int(fields[2]) == pgid)


def postgres_processes(server: pg.PostgresServer) -> list[int]:
    """The postmaster and its children: the backends serving our connections among them."""
    postmaster = server.pid()
    if postmaster is None:
        return []
    return [postmaster, *processes(lambda fields: int(fields[1]) == postmaster)]


# -- durability ---------------------------------------------------------------------------------

def missing_acknowledged(url: str, ackdir: Path) -> dict:
    """After a SIGKILL of the service: every id it acknowledged with a 2xx is stored."""
    acked = sorted({line for path in ackdir.glob("acked-*.txt")
                    for line in path.read_text().splitlines() if line})

    async def lookup() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT a FROM unnest($1::text[]) AS a WHERE NOT EXISTS "
                                    "(SELECT 1 FROM signals WHERE signal_id = a)", acked)
        finally:
            await conn.close()
        return [row[0] for row in rows]

    missing = asyncio.run(lookup())
    return {"acknowledged": len(acked), "missing_after_sigkill": len(missing),
            "missing_sample": missing[:5], "durable": not missing}


def database_size_mb(url: str) -> float:
    async def size() -> int:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await conn.close()

    return round(asyncio.run(size()) / 1e6, 1)
