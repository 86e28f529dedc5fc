"""Request handlers: parse and validate, call the store, shape the answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Annotated

import orjson
from aiohttp import web
from pydantic import Field, TypeAdapter

from .. import __version__, metrics, timeutil
from ..models import (
    MAX_BATCH,
    MAX_CONTEXT_BYTES,
    AgentQuery,
    BulkStatusUpdate,
    HeartbeatIn,
    SignalIn,
    SignalQuery,
    StatusUpdate,
)
from ..store import NewSignal, StoreUnavailable
from .auth import Role, requires
from .keys import AGENT_ID, METRICS, OPENAPI, SETTINGS, STORE
from .responses import ApiError, json_response

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
ANALYST_ACTOR = "analyst"
HEALTH_CACHE_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 5.0

_signal_batch = TypeAdapter(Annotated[list[SignalIn], Field(max_length=MAX_BATCH)])


def _to_new_signal(signal: SignalIn, index: int | None = None) -> NewSignal:
    context_json = signal.context_json()
    if len(context_json) > MAX_CONTEXT_BYTES:
        where = "" if index is None else f" (item {index})"
        raise ApiError(413, f"context is {len(context_json)} bytes{where}; the limit is "
                            f"{MAX_CONTEXT_BYTES}", signal_id=signal.signal_id)
    return NewSignal(
        signal_id=signal.signal_id, ts=signal.ts, host_id=signal.host_id,
        rule_id=signal.rule_id, severity=signal.severity, title=signal.title,
        tags_json=orjson.dumps(signal.tags or []), context_json=context_json,
        status=signal.status, rule_description=signal.rule_description)


@requires(Role.AGENT)
async def ingest(request: web.Request) -> web.Response:
    """One signal object, or a JSON array of up to 1,000 (all stored, or none)."""
    body = await request.read()
    store = request.app[STORE]
    if body.lstrip()[:1] == b"[":
        batch = [_to_new_signal(s, i) for i, s in enumerate(_signal_batch.validate_json(body))]
        hosts = {s.host_id for s in batch}
        if len(hosts) == 1:
            request[AGENT_ID] = hosts.pop()
        stored = await store.insert_signals(batch) if batch else []
        request.app[METRICS].count_ingest(sum(stored), len(stored) - sum(stored))
        return json_response({
            "status": "received",
            "received": len(batch),
            "stored": sum(stored),
            "duplicates": len(stored) - sum(stored),
            "results": [{"signal_id": s.signal_id, "duplicate": not new}
                        for s, new in zip(batch, stored, strict=True)],
        })
    signal = _to_new_signal(SignalIn.model_validate_json(body))
    request[AGENT_ID] = signal.host_id
    (stored,) = await store.insert_signals([signal])
    request.app[METRICS].count_ingest(int(stored), int(not stored))
    return json_response({"status": "received", "signal_id": signal.signal_id,
                          "duplicate": not stored})


@requires(Role.AGENT)
async def heartbeat(request: web.Request) -> web.Response:
    beat = HeartbeatIn.model_validate_json(await request.read())
    request[AGENT_ID] = beat.agent_id
    await request.app[STORE].record_heartbeat(beat)
    return json_response({"status": "ok", "agent_id": beat.agent_id})


async def list_signals(request: web.Request) -> web.Response:
    query = SignalQuery.model_validate(dict(request.query))
    page = await request.app[STORE].list_signals(query)
    return json_response({"count": len(page.signals), "signals": page.signals,
                          "next_cursor": page.next_cursor})


async def get_signal(request: web.Request) -> web.Response:
    signal_id = request.match_info["signal_id"]
    signal = await request.app[STORE].get_signal(signal_id)
    if signal is None:
        raise ApiError(404, "no such signal", signal_id=signal_id)
    return json_response(signal)


async def update_status(request: web.Request) -> web.Response:
    signal_id = request.match_info["signal_id"]
    update = StatusUpdate.model_validate_json(await request.read())
    result = await request.app[STORE].set_status([signal_id], update.status, update.note,
                                                 ANALYST_ACTOR)
    if result.not_found:
        raise ApiError(404, "no such signal", signal_id=signal_id)
    return json_response({"signal_id": signal_id, "status": update.status})


async def bulk_update_status(request: web.Request) -> web.Response:
    update = BulkStatusUpdate.model_validate_json(await request.read())
    result = await request.app[STORE].set_status(update.signal_ids, update.status, update.note,
                                                 ANALYST_ACTOR)
    return json_response({"updated": result.updated, "not_found": result.not_found,
                          "status": update.status})


async def list_agents(request: web.Request) -> web.Response:
    query = AgentQuery.model_validate(dict(request.query))
    agents = await request.app[STORE].list_agents(query)
    return json_response({"count": len(agents), "heartbeats": agents})


async def stats(request: web.Request) -> web.Response:
    return json_response(await request.app[STORE].stats())


class HealthCheck:
    """Proves the database takes a committed write, at most once a second."""

    def __init__(self) -> None:
        self._last_ok = float("-inf")

    @requires(Role.PUBLIC)
    async def handle(self, request: web.Request) -> web.Response:
        if time.monotonic() - self._last_ok > HEALTH_CACHE_SECONDS:
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                    await request.app[STORE].check_writable()
            except (StoreUnavailable, TimeoutError) as exc:
                return json_response({"status": "unhealthy", "error": "database cannot be "
                                      "written", "detail": str(exc) or "timed out",
                                      "timestamp": timeutil.utc_now()}, status=503)
            self._last_ok = time.monotonic()
        return json_response({"status": "healthy", "timestamp": timeutil.utc_now()})


@requires(Role.PUBLIC)
async def index(request: web.Request) -> web.Response:
    endpoints = sorted({f"{route.method} {route.resource.canonical}"
                        for route in request.app.router.routes()
                        if route.method != "HEAD" and route.resource is not None})
    return json_response({"name": "Santamon Backend", "version": __version__,
                          "endpoints": endpoints})


async def prometheus_metrics(request: web.Request) -> web.Response:
    """Counters as they stand, plus gauges read now: agents and signals by status, DB size."""
    registry = request.app[METRICS]
    with contextlib.suppress(StoreUnavailable, TimeoutError):
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            counts = await request.app[STORE].stats()
        for status in ("active", "stale"):
            registry.agents.labels(status=status).set(counts["agents"][status])
        for status, n in counts["by_status"].items():
            registry.signals.labels(status=status).set(n)
    registry.db_size.set(_database_size(request.app[SETTINGS].db_path))
    return web.Response(body=registry.render(), headers={"Content-Type": metrics.CONTENT_TYPE})


def _database_size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += path.with_name(path.name + suffix).stat().st_size
    return total


@requires(Role.PUBLIC)
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


@requires(Role.PUBLIC)
async def swagger_ui(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "docs" / "swagger.html")


@requires(Role.PUBLIC)
async def redoc(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "docs" / "redoc.html")
