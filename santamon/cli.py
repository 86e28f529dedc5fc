"""The `santamon` command: `serve`, and `dev-keys` for a development machine."""

from __future__ import annotations

import argparse
import logging
import secrets
import ssl
import sys
from pathlib import Path

from aiohttp import web

from . import __version__
from .config import ConfigError, Settings, ensure_admin_key, load_settings, write_secret_file

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
    from .api.app import create_app

    settings = load_settings(args.config)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The scheduler's own INFO lines (every job run) would drown the service's.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    settings, key_file = ensure_admin_key(settings)
    if key_file is not None:
        log.info("analyst key: read it from %s (set SANTAMON_ADMIN_KEY to choose one)", key_file)
    tls = _tls_context(settings)
    if tls is None:
        log.warning("serving plain HTTP: agents refuse non-loopback HTTP endpoints; set "
                    "SANTAMON_TLS_CERT and SANTAMON_TLS_KEY for production")
    scheme = "https" if tls else "http"
    web.run_app(create_app(settings), host=settings.host, port=settings.port, ssl_context=tls,
                shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, print=None,
                access_log=logging.getLogger("santamon.access"))
    log.info("stopped (%s://%s:%d)", scheme, settings.host, settings.port)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="santamon", description="Santamon Backend")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the HTTP service")
    serve_cmd.add_argument("--config", help="TOML file; SANTAMON_* variables override it")
    serve_cmd.set_defaults(func=serve)

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
