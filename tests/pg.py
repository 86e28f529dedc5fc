"""A throwaway PostgreSQL server for the tests, from Debian's `postgresql` package.

`initdb` refuses to run as root, so as root the server runs as the `postgres` user, in a
temporary data directory that user owns, on a free port of 127.0.0.1 with its socket in that
directory. It is stopped by its PID file's process id. With `SANTAMON_TEST_DATABASE_URL` set,
the tests use that server instead (and skip what would stop it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .helpers import free_port

EXTERNAL_URL_VARIABLE = "SANTAMON_TEST_DATABASE_URL"
START_TIMEOUT_SECONDS = 30
# Nothing here outlives the tests: durability against power loss is not what they check
# (synchronous_commit stays on, so a crash of the server itself loses nothing acknowledged).
TEST_SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "200",
                 "shared_buffers": "32MB", "log_min_messages": "warning"}
_names = itertools.count()


def binaries() -> Path | None:
    """The newest installed server's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parent.parent.name))
    return Path(found[-1]).parent if found else None


def run_sql(url: str, *statements: str) -> None:
    """Run statements outside any transaction (CREATE DATABASE cannot run inside one), from
    a thread of its own so that it works with or without a running event loop."""

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class PostgresServer:
    """One server: started by `start`, stopped by `stop` (and started again, for outages)."""

    def __init__(self, *, durable: bool = False, directory: Path | None = None,
                 settings: dict[str, str] | None = None) -> None:
        """`durable` keeps PostgreSQL's defaults (fsync on), for measurements; `directory`
        keeps the server's files there, to be used again by a later run (a benchmark's cached
        database), instead of in a temporary directory; `settings` go to postgresql.conf."""
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (make test installs Debian's "
                               f"postgresql), and {EXTERNAL_URL_VARIABLE} is not set")
        self.bin = bin_dir
        self.port = free_port()
        self.dir = directory or Path(tempfile.mkdtemp(prefix="santamon-pg-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        if (self.data / "PG_VERSION").exists():
            return  # a kept server: its settings are in its postgresql.conf already
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        # The port is chosen at each start (start()), since a kept server may find it taken.
        settings = {**({} if durable else TEST_SETTINGS), **(settings or {}),
                    "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.dir)}
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr}"
                               f"{self.log.read_text() if self.log.exists() else ''}")

    def start(self) -> PostgresServer:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", str(START_TIMEOUT_SECONDS), "-o", f"-p {self.port}", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast` is a clean shutdown that ends every session; `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def destroy(self) -> None:
        """Stop the server by its process id, whatever state it is in, and delete its files."""
        pid = self.pid()
        if pid is not None and _alive(pid):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop()
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def new_database(self) -> str:
        return new_database(self.url)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the server; returns its URL."""
    name = f"santamon_test_{os.getpid()}_{next(_names)}"
    run_sql(server_url, f"CREATE DATABASE {name} TEMPLATE template0")
    return with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    run_sql(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
