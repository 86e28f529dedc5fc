"""The `santamon` command: `serve`, `check-config`, `gen-cert`, `vacuum`, `migrate-db`,
`dev-keys`, and the stored keys: `agent-keys` and `analyst-keys`."""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import getpass
import hashlib
import io
import logging
import os
import secrets
import signal
import sqlite3
import ssl
import sys
import tomllib
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

import uvloop
from aiohttp import web
from yarl import URL

from . import __version__, certs, memory, timeutil, workers
from .config import (
    POSTGRESQL_SCHEMES,
    ConfigError,
    Settings,
    ensure_admin_key,
    env_name,
    instance_name,
    load_settings,
    parse_duration,
    write_secret_file,
)
from .domain.keys import (
    ANALYST_ROLE,
    MAX_ROTATION_GRACE_SECONDS,
    PERSON_ROLES,
    RESERVED_NAMES,
    agent_key_state,
    digest,
    new_agent_key,
    new_key_id,
    new_person_key,
)
from .logs import configure_logging
from .tasks import cancel_and_wait

log = logging.getLogger("santamon")

SHUTDOWN_TIMEOUT_SECONDS = 10.0
DEFAULT_CERT, DEFAULT_KEY = Path("cert.pem"), Path("key.pem")


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.tls_cert, settings.tls_key
    if (cert is None) != (key is None):
        raise ConfigError("SANTAMON_TLS_CERT and SANTAMON_TLS_KEY must be set together")
    if cert is None and DEFAULT_CERT.is_file() and DEFAULT_KEY.is_file():
        cert, key = DEFAULT_CERT, DEFAULT_KEY
    elif cert is None and (DEFAULT_CERT.exists() or DEFAULT_KEY.exists()):
        # Someone meant to serve TLS here: quietly serving plain HTTP instead would hide it.
        found, missing = ((DEFAULT_CERT, DEFAULT_KEY) if DEFAULT_CERT.exists()
                          else (DEFAULT_KEY, DEFAULT_CERT))
        raise ConfigError(f"found {found} but no {missing} in {Path.cwd()}: put both there, "
                          "set SANTAMON_TLS_CERT and SANTAMON_TLS_KEY, or remove it")
    if cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"SANTAMON_TLS_CERT/SANTAMON_TLS_KEY: cannot load {cert} and {key}: "
                          f"{exc}") from None
    return context


def serve(args: argparse.Namespace) -> int:
    from .app import StartupError, create_app

    environ = dict(os.environ)
    if args.workers is not None:  # the option wins over the variable, and is checked alike
        environ[env_name("workers")] = str(args.workers)
    settings = load_settings(args.config, environ)
    if args.worker is not None:
        workers.die_with_supervisor(args.supervisor)
    configure_logging(settings.log_format, settings.log_level.upper(), worker=args.worker)
    # The scheduler's own INFO lines (every job run) would drown the service's.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    settings, key_file = ensure_admin_key(settings)  # before any worker starts: created once
    if key_file is not None and args.worker is None:
        log.info("admin key: read it from %s (set SANTAMON_ADMIN_KEY to choose one)", key_file)
    tls = _tls_context(settings)
    if tls is None and args.worker is None:
        log.warning("serving plain HTTP: agents refuse non-loopback HTTP endpoints; set "
                    "SANTAMON_TLS_CERT and SANTAMON_TLS_KEY for production")
    scheme = "https" if tls else "http"
    if settings.workers > 1 and args.worker is None:
        return _supervise(args, settings, scheme)
    app = create_app(settings, instance=instance_name(settings, args.worker))
    try:
        # uvloop cuts the per-request cost of the loop itself.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_run(app, settings, tls, reuse_port=args.worker is not None))
    except StartupError as exc:
        log.critical("cannot start: %s", exc)
        return 1
    log.info("stopped (%s://%s:%d)", scheme, settings.host, settings.port)
    return 0


def _supervise(args: argparse.Namespace, settings: Settings, scheme: str) -> int:
    """Run `settings.workers` worker processes on the port until SIGTERM (santamon/workers.py)."""
    try:
        workers.check_port_free(settings.host, settings.port)
    except OSError as exc:  # the same line as a single process's (_run)
        log.critical("cannot start: cannot listen on %s:%d: %s", settings.host, settings.port,
                     exc.strerror or exc)
        return 1
    config = ["--config", args.config] if args.config else []

    def command(number: int) -> list[str]:
        return [sys.executable, "-m", "santamon", "serve", *config, "--worker", str(number),
                "--supervisor", str(os.getpid())]

    log.info("serving %s://%s:%d with %d worker processes", scheme, settings.host,
             settings.port, settings.workers)
    code = asyncio.run(workers.Supervisor(settings.workers, command).run())
    log.info("stopped (%s://%s:%d, %d workers)", scheme, settings.host, settings.port,
             settings.workers)
    return code


async def _run(app: web.Application, settings: Settings, tls: ssl.SSLContext | None, *,
               reuse_port: bool) -> None:
    """Serve until SIGTERM or SIGINT. A start that fails undoes what it had started and raises
    StartupError, so the process exits instead of hanging on a thread; SIGTERM works while
    starting too. `reuse_port`: a worker of several, sharing the port (SO_REUSEPORT)."""
    from .app import StartupError, listening_site

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # access_log=None: observe_middleware writes the one line per request.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    setup = asyncio.ensure_future(runner.setup())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({setup, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not setup.done():  # stopped while starting, e.g. during a long schema upgrade
        setup.cancel()
    try:
        await setup
    except BaseException as exc:
        await app.cleanup()  # what started before the failure (the store) stops again
        if isinstance(exc, asyncio.CancelledError):
            log.info("stopped while starting")
            return
        if isinstance(exc, StartupError):
            raise
        raise StartupError(str(exc) or type(exc).__name__) from exc
    trimming = None
    try:
        site = listening_site(runner, settings, tls, reuse_port=reuse_port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {settings.host}:{settings.port}: "
                               f"{exc.strerror or exc}") from exc
        log.info("listening on %s", site.name)
        tune_garbage_collector()
        trimming = asyncio.create_task(memory.trim_forever(), name="santamon-malloc-trim")
        await stop.wait()
    finally:
        await cancel_and_wait(trimming)
        await runner.cleanup()


# Requests leave their objects (a batch's parsed contexts: thousands of dicts and lists) to
# reference counting; the cyclic collector only needs to run now and then. At the default
# threshold (700) it ran every few signals, promoted what a request still held and re-walked it
# in the older generations: half of the samples of a batch's validation (py-spy, issue 15).
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Once started: what start-up made (modules, the app, its caches) stays, so the collector
    stops walking it (`gc.freeze`), and the young generation is collected less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


SECRET_SETTINGS = frozenset({"api_key", "admin_key", "forward_webhook_secret"})
# A webhook URL's path and query are often its credential (Slack, Teams): show the origin only.
SECRET_URL_SETTINGS = frozenset({"forward_webhook_url"})
# A database URL shows everything but its password.
DATABASE_URL_SETTINGS = frozenset({"database_url"})


def mask_secret(value: str) -> str:
    """Enough to tell two keys apart or match one across machines; never the key itself."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"<secret: {len(value)} chars, sha256 {digest}>"


def mask_database_url(url: str) -> str:
    """The URL with its password (in the user part or the query) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:{mask_secret(unquote(parts.password))}@{host}"
    query = "&".join(
        f"{key}={mask_secret(value) if key == 'password' else value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(unset)"
    if name in DATABASE_URL_SETTINGS:
        value = mask_database_url(value)
    elif name in SECRET_SETTINGS:
        value = [mask_secret(v) for v in value] if isinstance(value, list) else mask_secret(value)
    elif name in SECRET_URL_SETTINGS:
        url = str(value)
        value = f"{URL(url).origin()}/{mask_secret(url)}"  # origin() drops user:password too
    if isinstance(value, list):
        return "[" + ", ".join(_shown("", v) for v in value) + "]"
    return str(value) if isinstance(value, int | float) else f'"{value}"'


def check_config(args: argparse.Namespace) -> int:
    """Validate like `serve` would, then print the effective settings with secrets masked."""
    settings = load_settings(args.config)
    file_keys: set[str] = set()
    if args.config:
        with open(args.config, "rb") as handle:
            file_keys = set(tomllib.load(handle))
    tls = _tls_context(settings)
    admin_note = None
    if settings.admin_key is None:
        key_file = settings.admin_key_file
        if key_file.exists():
            settings, _ = ensure_admin_key(settings)  # reads and checks it; creates nothing
            admin_note = f"from {key_file}"
        else:
            admin_note = f"will be generated into {key_file} on first start"
    print(f"configuration is valid{f' ({args.config})' if args.config else ''}")
    width = max(map(len, Settings.model_fields))
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name == "admin_key" and admin_note:
            source = admin_note
        elif env_name(name) in os.environ:
            source = f"environment {env_name(name)}"
        elif name in file_keys:
            source = "config file"
        else:
            source = "default"
        print(f"{name:<{width}} = {_shown(name, value)}  # {source}")
    if tls is not None:
        cert_path = settings.tls_cert or DEFAULT_CERT
        cert = certs.load_certificate(cert_path)
        print(f"tls: enabled, certificate {cert_path} valid until "
              f"{cert.not_valid_after_utc:%Y-%m-%d}, SHA-256 {certs.fingerprint(cert)}")
    else:
        print("tls: disabled (agents refuse plain HTTP to anything but loopback)")
    if settings.database_url:
        print(f"storage: PostgreSQL {mask_database_url(settings.database_url)}, "
              f"up to {settings.database_pool_size} connections per process (and one for "
              f"job locks), {settings.workers} worker process(es)")
        return 0
    print(f"storage: SQLite file {settings.db_path.resolve()}")
    db_dir = settings.db_path.resolve().parent
    if not os.access(db_dir if db_dir.exists() else db_dir.parent, os.W_OK):
        print(f"warning: {db_dir} is not writable by this user", file=sys.stderr)
    return 0


def gen_cert(args: argparse.Namespace) -> int:
    try:
        result = certs.write_self_signed(args.out_dir, args.host, days=args.days,
                                         overwrite=args.force)
    except FileExistsError as exc:
        print(f"santamon: {exc}; pass --force to replace them", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"santamon: {exc}", file=sys.stderr)
        return 2
    names = [*result.dns_names, *map(str, result.ip_addresses)]
    cert, key = result.cert_path.resolve(), result.key_path.resolve()
    print(f"""Wrote {result.cert_path} and {result.key_path} (private key, mode 0600).
  names:       {", ".join(names)}
  valid until: {result.not_after:%Y-%m-%d %H:%M} UTC
  SHA-256:     {result.fingerprint_sha256}
Serve with it:
  SANTAMON_TLS_CERT={cert} SANTAMON_TLS_KEY={key} santamon serve
Agents must trust this certificate (or set tls_skip_verify); compare the fingerprint above.""")
    return 0


def dev_keys(args: argparse.Namespace) -> int:
    """Create development keys once, in a 0600 env file, and say how to use them."""
    path = Path(args.file)
    if not path.exists():
        write_secret_file(path, f"SANTAMON_API_KEY={secrets.token_urlsafe(24)}\n"
                                f"SANTAMON_ADMIN_KEY={secrets.token_urlsafe(32)}\n")
        print(f"Generated development keys in {path} (mode 0600, ignored by git).")
    else:
        print(f"Using the development keys in {path}.")
    port = args.port
    print(f"""It holds SANTAMON_API_KEY (a shared agent key) and SANTAMON_ADMIN_KEY (the admin key).
Try:
  . ./{path} && curl -s -H "X-API-Key: $SANTAMON_API_KEY" -H 'Content-Type: application/json' \\
      --data @tests/samples/signal-file-access.json http://127.0.0.1:{port}/ingest
  . ./{path} && curl -s -H "Authorization: Bearer $SANTAMON_ADMIN_KEY" \\
      http://127.0.0.1:{port}/signals
Console: http://127.0.0.1:{port}/ui (sign in with the admin key)""")
    return 0


def vacuum(args: argparse.Namespace) -> int:
    """Give the free pages retention leaves behind back to the file system."""
    from .store.sqlite.maintenance import vacuum as vacuum_file

    settings = load_settings(args.config)
    if settings.database_url:
        print("santamon: vacuum compacts a SQLite file; with PostgreSQL, autovacuum and the "
              "retention job's VACUUM do this", file=sys.stderr)
        return 2
    print(f"vacuuming {settings.db_path}; ingest waits (503, agents retry) until it is done")
    try:
        before, after = vacuum_file(settings.db_path)
    except (OSError, sqlite3.Error) as exc:
        print(f"santamon: cannot vacuum {settings.db_path}: {exc}", file=sys.stderr)
        return 1
    print(f"done: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    return 0


def migrate_db(args: argparse.Namespace) -> int:
    """Copy a SQLite database into PostgreSQL; run it again to resume after an interruption."""
    import asyncpg

    from .progress import Progress
    from .store import StoreUnavailable
    from .store.postgres import importer

    target = args.to or os.environ.get(env_name("database_url"))
    if not target or not target.startswith(POSTGRESQL_SCHEMES):
        print("santamon: pass --to postgresql://user:password@host:port/database (or set "
              f"{env_name('database_url')})", file=sys.stderr)
        return 2
    if args.chunk_size is not None and args.chunk_size < 1:
        print("santamon: --chunk-size must be at least 1", file=sys.stderr)
        return 2
    print(f"copying {args.source} into {mask_database_url(target)} (stop `santamon serve` on "
          "the SQLite file first; run this again to resume if it is interrupted)")
    try:
        outcome = asyncio.run(importer.migrate_sqlite(
            Path(args.source), target, chunk_rows=args.chunk_size or importer.CHUNK_ROWS,
            progress=Progress().update))
    except importer.MigrationRefused as exc:
        print(f"santamon: refusing to migrate: {exc}", file=sys.stderr)
        return 1
    except importer.CountMismatch as exc:
        print(f"santamon: the copy is incomplete: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error, asyncpg.PostgresError, StoreUnavailable) as exc:
        print(f"santamon: migration stopped: {exc}; run the same command again to resume",
              file=sys.stderr)
        return 1
    counts = ", ".join(f"{n:,} {table}" for table, n in outcome.counts.items())
    print(f"done{' (resumed)' if outcome.resumed else ''}: counts verified: {counts}")
    print(f"serve from PostgreSQL: {env_name('database_url')}=... santamon serve")
    return 0


# -- stored keys ------------------------------------------------------------------------------

MAX_HOST_LENGTH = 255


class KeyCommandError(Exception):
    """A key command cannot do what was asked; the message says why (exit code 1)."""


def _operator() -> str:
    """Who ran the command, for the keys' record: the Unix user on the server."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container without an entry for this uid
        return f"cli:uid-{os.getuid()}"


def _with_store(args: argparse.Namespace,
                work: Callable[[Any], Awaitable[int]]) -> int:
    """Run `work(store)` on the configured database (the server may be running: it sees the
    change within seconds)."""
    from .store import StoreUnavailable, create_store
    from .store.base import SchemaTooNew

    settings = load_settings(args.config)

    async def run() -> int:
        store = create_store(settings)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (StoreUnavailable, SchemaTooNew, OSError, sqlite3.Error) as exc:
        print(f"santamon: the database cannot be used: {exc}", file=sys.stderr)
        return 1


def _check_host(host: str) -> str:
    host = host.strip()
    if not host or len(host) > MAX_HOST_LENGTH or any(ord(c) < 32 or 127 <= ord(c) < 160
                                                       for c in host):
        raise KeyCommandError(f"not a host id: {host!r} (1-{MAX_HOST_LENGTH} characters, "
                              "no control characters)")
    return host


def read_hosts(lines: Iterable[str]) -> list[str]:
    """Hosts from a CSV (the first column; a header `host` or `host_id` is skipped) or one per
    line; blank lines and repeats are left out."""
    hosts: list[str] = []
    for number, row in enumerate(csv.reader(lines)):
        cell = row[0].strip() if row else ""
        if not cell or (number == 0 and cell.lower() in ("host", "host_id", "hostname")):
            continue
        hosts.append(_check_host(cell))
    return list(dict.fromkeys(hosts))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])


def agent_keys_create(args: argparse.Namespace) -> int:
    from .store import NewAgentKey

    if args.from_csv is not None:
        if args.from_csv == "-":
            hosts = read_hosts(sys.stdin)
        else:
            try:
                with open(args.from_csv, newline="", encoding="utf-8") as handle:
                    hosts = read_hosts(handle)
            except (OSError, UnicodeDecodeError) as exc:
                print(f"santamon: cannot read {args.from_csv}: {exc}", file=sys.stderr)
                return 2
    else:
        hosts = list(dict.fromkeys(_check_host(host) for host in args.host))
    if not hosts:
        print("santamon: no hosts given (--host NAME, or --from-csv FILE with one host per "
              "line)", file=sys.stderr)
        return 2
    out_path = Path(args.out) if args.out else None
    if out_path is not None and out_path.exists():
        print(f"santamon: {out_path} exists; the keys go into a new file only",
              file=sys.stderr)
        return 2
    operator = _operator()
    secrets_by_host = {host: new_agent_key() for host in hosts}

    async def create(store: Any) -> int:
        created = await store.create_agent_keys([
            NewAgentKey(new_key_id(), digest(secret), host, operator)
            for host, secret in secrets_by_host.items()])
        if args.from_csv is None and out_path is None:
            for key in created:
                print(f"agent key {key.key_id} for host {key.host_id}:\n"
                      f"  {secrets_by_host[key.host_id]}")
            print("Each key is shown this once (only its hash is kept). Put it in the agent's "
                  "config on that Mac (its API key); it may send for that host only.",
                  file=sys.stderr)
            return 0
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["host", "key"])
        writer.writerows([key.host_id, secrets_by_host[key.host_id]] for key in created)
        if out_path is not None:
            write_secret_file(out_path, buffer.getvalue())
            print(f"{len(created)} agent key(s) written to {out_path} (mode 0600) as host,key: "
                  "hand it to your MDM, then delete it.", file=sys.stderr)
        else:
            sys.stdout.write(buffer.getvalue())
            print(f"{len(created)} agent key(s) created; they are shown this once.",
                  file=sys.stderr)
        return 0

    return _with_store(args, create)


def _print_agent_keys(keys: list[Any], out: TextIO) -> None:
    now = timeutil.utc_now()
    rows = [[key.key_id, key.host_id,
             agent_key_state(expires_at=key.expires_at, revoked_at=key.revoked_at, now=now)
             + (f" until {key.expires_at}" if key.expires_at and not key.revoked_at else ""),
             f"{key.created_at} by {key.created_by}",
             f"{key.last_used_at} from {key.last_used_from}" if key.last_used_at else "never"]
            for key in keys]
    print(_table(rows, ["KEY ID", "HOST", "STATE", "CREATED", "LAST USED"]), file=out)


def agent_keys_list(args: argparse.Namespace) -> int:
    async def show(store: Any) -> int:
        keys = await store.list_agent_keys(args.host)
        if not args.all:
            now = timeutil.utc_now()
            keys = [key for key in keys if agent_key_state(
                expires_at=key.expires_at, revoked_at=key.revoked_at, now=now)
                in ("active", "expiring")]
        _print_agent_keys(keys, sys.stdout)
        return 0

    return _with_store(args, show)


def agent_keys_revoke(args: argparse.Namespace) -> int:
    operator = _operator()

    async def revoke(store: Any) -> int:
        missing = []
        for key_id in args.key_id:
            key = await store.revoke_agent_key(key_id, operator)
            if key is None:
                missing.append(key_id)
            else:
                print(f"agent key {key.key_id} for host {key.host_id}: revoked "
                      f"({key.revoked_at} by {key.revoked_by})")
        if missing:
            raise KeyCommandError(f"no agent key has the id {', '.join(missing)}")
        return 0

    return _with_store(args, revoke)


def agent_keys_rotate(args: argparse.Namespace) -> int:
    from .store import NewAgentKey

    try:
        grace = parse_duration(args.grace)
    except ValueError as exc:
        print(f"santamon: --grace: {exc}", file=sys.stderr)
        return 2
    if grace > MAX_ROTATION_GRACE_SECONDS:
        print("santamon: --grace: at most 90d", file=sys.stderr)
        return 2
    secret = new_agent_key()
    until = timeutil.format_utc(timeutil.now_ns() + int(grace * 1e9))

    async def rotate(store: Any) -> int:
        new = NewAgentKey(new_key_id(), digest(secret), "", _operator())
        key = await store.rotate_agent_key(args.key_id, new, until)
        if key is None:
            raise KeyCommandError(f"no valid agent key has the id {args.key_id} (unknown, "
                                  "revoked or expired)")
        old = next(k for k in await store.list_agent_keys(key.host_id)
                   if k.key_id == args.key_id)
        print(f"agent key {key.key_id} for host {key.host_id} (replaces {args.key_id}, which "
              f"stays valid until {old.expires_at}):\n  {secret}")
        print("The new key is shown this once (only its hash is kept).", file=sys.stderr)
        return 0

    return _with_store(args, rotate)


def analyst_keys_create(args: argparse.Namespace) -> int:
    from .store import NameTaken, NewAnalystKey

    name = args.name.strip()
    if not name or len(name) > 64 or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        print("santamon: --name: 1-64 characters, no control characters", file=sys.stderr)
        return 2
    if name.lower() in RESERVED_NAMES:
        print(f"santamon: --name: {name!r} is reserved for the service's own entries",
              file=sys.stderr)
        return 2
    secret = new_person_key()

    async def create(store: Any) -> int:
        try:
            key = await store.create_analyst_key(NewAnalystKey(
                new_key_id(), digest(secret), name, args.role, _operator()))
        except NameTaken as exc:
            raise KeyCommandError(str(exc)) from None
        print(f"{key.role} key {key.key_id} for {key.name}:\n  {secret}")
        print(f"Shown this once (only its hash is kept). {key.name} signs in to the console "
              "with it, or sends it as `Authorization: Bearer <key>`.", file=sys.stderr)
        return 0

    return _with_store(args, create)


def analyst_keys_list(args: argparse.Namespace) -> int:
    async def show(store: Any) -> int:
        keys = await store.list_analyst_keys()
        if not args.all:
            keys = [key for key in keys if key.revoked_at is None]
        rows = [[key.key_id, key.name, key.role, f"{key.created_at} by {key.created_by}",
                 f"revoked {key.revoked_at} by {key.revoked_by}" if key.revoked_at else "active"]
                for key in keys]
        print(_table(rows, ["KEY ID", "NAME", "ROLE", "CREATED", "STATE"]))
        return 0

    return _with_store(args, show)


def analyst_keys_revoke(args: argparse.Namespace) -> int:
    operator = _operator()

    async def revoke(store: Any) -> int:
        keys = await store.list_analyst_keys()
        # A key id, or the name of a person with a key not revoked.
        matches = [key for key in keys if key.key_id == args.key] or [
            key for key in keys if key.name == args.key and key.revoked_at is None]
        if not matches:
            raise KeyCommandError(f"no person's key has the id or name {args.key!r}")
        key = await store.revoke_analyst_key(matches[0].key_id, operator)
        print(f"{key.role} key {key.key_id} of {key.name}: revoked ({key.revoked_at} by "
              f"{key.revoked_by}); their console sessions are ended")
        return 0

    return _with_store(args, revoke)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="santamon", description="Santamon Backend")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the HTTP service")
    serve_cmd.add_argument("--config", help="TOML file; SANTAMON_* variables override it")
    serve_cmd.add_argument("--workers", type=int, metavar="N",
                           help="processes sharing the port (needs PostgreSQL for N > 1; "
                                f"default {env_name('workers')} or 1)")
    # How the supervisor starts each worker: its number, and the supervisor's pid.
    serve_cmd.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve_cmd.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)
    serve_cmd.set_defaults(func=serve)

    check_cmd = commands.add_parser(
        "check-config", help="validate the configuration and print it with secrets masked")
    check_cmd.add_argument("--config", help="TOML file; SANTAMON_* variables override it")
    check_cmd.set_defaults(func=check_config)

    cert_cmd = commands.add_parser("gen-cert", help="write a self-signed TLS certificate")
    cert_cmd.add_argument("--out-dir", default=".", help="where to write cert.pem and key.pem")
    cert_cmd.add_argument("--host", action="append", default=[], metavar="NAME",
                          help="a DNS name or IP address to include (repeatable); "
                               "localhost, 127.0.0.1 and ::1 are always included")
    cert_cmd.add_argument("--days", type=int, default=certs.DEFAULT_DAYS,
                          help=f"validity in days (default {certs.DEFAULT_DAYS})")
    cert_cmd.add_argument("--force", action="store_true", help="replace existing files")
    cert_cmd.set_defaults(func=gen_cert)

    vacuum_cmd = commands.add_parser(
        "vacuum", help="compact the SQLite file (safe while the server runs)")
    vacuum_cmd.add_argument("--config", help="TOML file; SANTAMON_* variables override it")
    vacuum_cmd.set_defaults(func=vacuum)

    migrate_cmd = commands.add_parser(
        "migrate-db", help="copy a SQLite database into PostgreSQL (resumable)")
    migrate_cmd.add_argument("--from", dest="source", required=True, metavar="SQLITE_FILE",
                             help="the SQLite database (upgraded in place first, as serve does)")
    migrate_cmd.add_argument("--to", metavar="POSTGRESQL_URL",
                             help=f"the target database (default: {env_name('database_url')})")
    migrate_cmd.add_argument("--chunk-size", type=int, metavar="ROWS",
                             help="rows copied per transaction")
    migrate_cmd.set_defaults(func=migrate_db)

    keys_cmd = commands.add_parser("dev-keys", help="create development keys in an env file")
    keys_cmd.add_argument("file", nargs="?", default=".dev-keys.env")
    keys_cmd.add_argument("--port", type=int, default=8443, help="port shown in the examples")
    keys_cmd.set_defaults(func=dev_keys)

    config_help = "TOML file; SANTAMON_* variables override it"
    agent_keys = commands.add_parser(
        "agent-keys", help="keys bound to one host each, for the agents").add_subparsers(
        dest="action", required=True)
    create_cmd = agent_keys.add_parser(
        "create", help="create a key per host; each is shown once")
    hosts = create_cmd.add_mutually_exclusive_group(required=True)
    hosts.add_argument("--host", action="append", metavar="HOST",
                       help="the host id the agent sends (usually its hostname); repeatable")
    hosts.add_argument("--from-csv", metavar="FILE",
                       help="hosts in the first column of a CSV, or one per line (- for "
                            "stdin); writes host,key lines for the MDM")
    create_cmd.add_argument("--out", metavar="FILE",
                            help="write host,key lines into this new file (mode 0600) instead "
                                 "of stdout")
    create_cmd.set_defaults(func=agent_keys_create)
    list_cmd = agent_keys.add_parser("list", help="valid keys, with when they were last used")
    list_cmd.add_argument("--host", help="only this host's keys")
    list_cmd.add_argument("--all", action="store_true", help="revoked and expired keys too")
    list_cmd.set_defaults(func=agent_keys_list)
    revoke_cmd = agent_keys.add_parser("revoke", help="revoke keys now (kept for the record)")
    revoke_cmd.add_argument("key_id", nargs="+", metavar="KEY_ID")
    revoke_cmd.set_defaults(func=agent_keys_revoke)
    rotate_cmd = agent_keys.add_parser(
        "rotate", help="a new key for the same host; the old one valid for a grace period")
    rotate_cmd.add_argument("key_id", metavar="KEY_ID")
    rotate_cmd.add_argument("--grace", default="24h",
                            help="how long the old key stays valid (e.g. 1h, 7d; 0 ends it "
                                 "now; at most 90d; default 24h)")
    rotate_cmd.set_defaults(func=agent_keys_rotate)

    analyst_keys = commands.add_parser(
        "analyst-keys", help="people's keys: analysts and read-only viewers").add_subparsers(
        dest="action", required=True)
    person_cmd = analyst_keys.add_parser("create", help="a key for one person, shown once")
    person_cmd.add_argument("--name", required=True,
                            help="the person, as the history will name them")
    person_cmd.add_argument("--role", choices=PERSON_ROLES, default=ANALYST_ROLE,
                            help="analyst (read, triage, manage agent keys; the default) or "
                                 "viewer (read only)")
    person_cmd.set_defaults(func=analyst_keys_create)
    people_cmd = analyst_keys.add_parser("list", help="people's keys")
    people_cmd.add_argument("--all", action="store_true", help="revoked keys too")
    people_cmd.set_defaults(func=analyst_keys_list)
    unperson_cmd = analyst_keys.add_parser(
        "revoke", help="revoke a person's key and end their console sessions")
    unperson_cmd.add_argument("key", metavar="KEY_ID_OR_NAME")
    unperson_cmd.set_defaults(func=analyst_keys_revoke)
    for group in (agent_keys, analyst_keys):
        for command in group.choices.values():
            command.add_argument("--config", help=config_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"santamon: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyCommandError as exc:
        print(f"santamon: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
