"""The URL map, and nothing else."""

from aiohttp import web

from . import console, views
from .console import STATIC_DIR
from .hardening import expect_continue


def setup_routes(app: web.Application) -> None:
    health = views.HealthCheck()
    routes = [
        ("GET", "/", views.index),
        ("GET", "/health", health.handle),
        ("POST", "/ingest", views.ingest),
        ("POST", "/agents/heartbeat", views.heartbeat),
        ("GET", "/agents", views.list_agents),
        ("GET", "/signals", views.list_signals),
        ("POST", "/signals/status", views.bulk_update_status),
        ("GET", "/signals/volume", views.signal_volume),
        ("GET", "/signals/{signal_id}", views.get_signal),
        ("PATCH", "/signals/{signal_id}/status", views.update_status),
        ("GET", "/stats", views.stats),
        ("GET", "/jobs", views.jobs),
        ("GET", "/metrics", views.prometheus_metrics),
        ("GET", "/openapi.json", views.openapi_json),
        ("GET", "/docs", views.swagger_ui),
        ("GET", "/redoc", views.redoc),
        ("POST", "/session", console.create_session),
        ("GET", "/session", console.get_session),
        ("DELETE", "/session", console.delete_session),
    ]
    # The console's files live in the source tree; an install without them still serves the API.
    if STATIC_DIR.is_dir():
        routes.append(("GET", "/ui", console.console_page))
    for method, path, handler in routes:
        # `Expect: 100-continue` is answered only once the key is checked.
        if method == "GET":
            app.router.add_get(path, handler, expect_handler=expect_continue)
        else:
            app.router.add_route(method, path, handler, expect_handler=expect_continue)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static", STATIC_DIR, follow_symlinks=False, show_index=False,
                              expect_handler=expect_continue)
