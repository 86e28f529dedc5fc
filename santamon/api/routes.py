"""The URL map, and nothing else."""

from aiohttp import web

from . import console, views
from .console import STATIC_DIR


def setup_routes(app: web.Application) -> None:
    health = views.HealthCheck()
    app.router.add_get("/", views.index)
    app.router.add_get("/health", health.handle)
    app.router.add_post("/ingest", views.ingest)
    app.router.add_post("/agents/heartbeat", views.heartbeat)
    app.router.add_get("/agents", views.list_agents)
    app.router.add_get("/signals", views.list_signals)
    app.router.add_post("/signals/status", views.bulk_update_status)
    app.router.add_get("/signals/volume", views.signal_volume)
    app.router.add_get("/signals/{signal_id}", views.get_signal)
    app.router.add_get("/signal", views.get_signal_by_query)
    app.router.add_patch("/signals/{signal_id}/status", views.update_status)
    app.router.add_get("/stats", views.stats)
    app.router.add_get("/jobs", views.jobs)
    app.router.add_get("/metrics", views.prometheus_metrics)
    app.router.add_get("/openapi.json", views.openapi_json)
    app.router.add_get("/docs", views.swagger_ui)
    app.router.add_get("/redoc", views.redoc)
    app.router.add_post("/session", console.create_session)
    app.router.add_get("/session", console.get_session)
    app.router.add_delete("/session", console.delete_session)
    # The console's files live in the source tree; an install without them still serves the API.
    if STATIC_DIR.is_dir():
        app.router.add_get("/ui", console.console_page)
        app.router.add_static("/static", STATIC_DIR, follow_symlinks=False, show_index=False)
