"""The `santamon` command: `serve`, `check-config`, `gen-cert`, `vacuum`, `migrate-db` and
`dev-keys`."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import secrets
import sqlite3
import ssl
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import uvloop
from aiohttp import web

from . import __version__, certs, workers
from .config import (
    POSTGRESQL_SCHEMES,
    ConfigError,
    Settings,
    ensure_admin_key,
    env_name,
    instance_name,
    load_settings,
    write_secret_file,
)
from .logs import configure_logging

log = logging.getLogger("santamon")

SHUTDOWN_TIMEOUT_SECONDS = 10.0
DEFAULT_CERT, DEFAULT_KEY = Path("cert.pem"), Path("key.pem")


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.tls_cert, settings.tls_key
    if (cert is None) != (key is None):
        raise ConfigError("SANTAMON_TLS_CERT and SANTAMON_TLS_KEY must be set together")
    if cert is None and DEFAULT_CERT.is_file() and DEFAULT_KEY.is_file():
        cert, key = DEFAULT_CERT, DEFAULT_KEY
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
    from .app import create_app

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
        log.info("analyst key: read it from %s (set SANTAMON_ADMIN_KEY to choose one)", key_file)
    tls = _tls_context(settings)
    if tls is None and args.worker is None:
        log.warning("serving plain HTTP: agents refuse non-loopback HTTP endpoints; set "
                    "SANTAMON_TLS_CERT and SANTAMON_TLS_KEY for production")
    scheme = "https" if tls else "http"
    if settings.workers > 1 and args.worker is None:
        return _supervise(args, settings, scheme)
    web.run_app(create_app(settings, instance=instance_name(settings, args.worker)),
                host=settings.host, port=settings.port, ssl_context=tls,
                reuse_port=args.worker is not None,  # workers share the port
                shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, print=None,
                loop=uvloop.new_event_loop(),  # cuts the per-request cost of the loop itself
                access_log=None)  # observe_middleware writes the one line per request
    log.info("stopped (%s://%s:%d)", scheme, settings.host, settings.port)
    return 0


def _supervise(args: argparse.Namespace, settings: Settings, scheme: str) -> int:
    """Run `settings.workers` worker processes on the port until SIGTERM (santamon/workers.py)."""
    try:
        workers.check_port_free(settings.host, settings.port)
    except OSError as exc:
        print(f"santamon: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
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
        origin = url.split("/", 3)[:3]
        value = "/".join(origin) + "/" + mask_secret(url) if len(origin) == 3 else mask_secret(url)
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
    print(f"""It holds SANTAMON_API_KEY (the agent key) and SANTAMON_ADMIN_KEY (the analyst key).
Try:
  . ./{path} && curl -s -H "X-API-Key: $SANTAMON_API_KEY" -H 'Content-Type: application/json' \\
      --data @tests/samples/signal-file-access.json http://127.0.0.1:{port}/ingest
  . ./{path} && curl -s -H "Authorization: Bearer $SANTAMON_ADMIN_KEY" \\
      http://127.0.0.1:{port}/signals
Console: http://127.0.0.1:{port}/ui (log in with the analyst key)""")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"santamon: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
