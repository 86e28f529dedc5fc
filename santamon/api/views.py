"""Request handlers: parse and validate, call the store, shape the answer."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from pathlib import Path
from typing import Annotated

import orjson
from aiohttp import web
from pydantic import Field, TypeAdapter

from .. import __version__, metrics, timeutil
from ..config import parse_duration
from ..models import (
    MAX_BATCH,
    MAX_CONTEXT_BYTES,
    SEVERITIES,
    STATUSES,
    AgentQuery,
    BulkStatusUpdate,
    HeartbeatIn,
    SignalIn,
    SignalQuery,
    StatusUpdate,
    VolumeQuery,
)
from ..store import NewSignal, StoreUnavailable
from .auth import Role, requires
from .console import STATIC_DIR
from .hardening import (
    BULK_STATUS_BODY_BYTES,
    MAX_BODY_BYTES,
    SMALL_BODY_BYTES,
    request_body,
    takes_body,
)
from .keys import AGENT_ID, JOB_BOARD, METRICS, OPENAPI, SETTINGS, STORE
from .responses import ApiError, json_response

ANALYST_ACTOR = "analyst"
HEALTH_CACHE_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 5.0
NS = 1_000_000_000
# `bucket=auto` takes the first of these widths that draws the window in at most ~120 bars
# (whole days beyond them); without `bucket`, 1 h is widened the same way past 2,000 bars.
AUTO_BUCKETS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
AUTO_BUCKET_TARGET = 120
DEFAULT_BUCKET_SECONDS = 3600
MIN_BUCKET_SECONDS = 60
MAX_BUCKET_SECONDS = 3660 * 86400  # about ten years
MAX_VOLUME_BUCKETS = 2000
# Go's zero time.Time: an agent whose clock was never set. Stored like any time, but left out
# of the default window, which would otherwise span 2,000 years.
GO_ZERO_TIME = "0001-01-01T00:00:00.000000000Z"
EARLIEST_NS = timeutil.parse_ns(GO_ZERO_TIME)  # also the earliest time there is

_signal_batch = TypeAdapter(Annotated[list[SignalIn], Field(max_length=MAX_BATCH)])


def _to_new_signal(signal: SignalIn, index: int | None = None) -> NewSignal:
    try:
        context_json = signal.context_json()
    except TypeError:
        loc = ["context"] if index is None else [index, "context"]
        raise ApiError(422, "validation failed", details=[{
            "loc": loc, "msg": "an integer in context is beyond 64 bits",
            "type": "value_error"}]) from None
    if len(context_json) > MAX_CONTEXT_BYTES:
        where = "" if index is None else f" (item {index})"
        raise ApiError(413, f"context is {len(context_json)} bytes{where}; the limit is "
                            f"{MAX_CONTEXT_BYTES}", signal_id=signal.signal_id)
    # Always open, whatever the agent says: a signal enters triage; an analyst moves it on.
    return NewSignal(
        signal_id=signal.signal_id, ts=signal.ts, host_id=signal.host_id,
        rule_id=signal.rule_id, severity=signal.severity, title=signal.title,
        tags_json=orjson.dumps(signal.tags or []), context_json=context_json,
        status="open", rule_description=signal.rule_description)


@requires(Role.AGENT)
@takes_body(MAX_BODY_BYTES)
async def ingest(request: web.Request) -> web.Response:
    """One signal object, or a JSON array of up to 1,000 (all stored, or none)."""
    body = request_body(request)
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
@takes_body(SMALL_BODY_BYTES)
async def heartbeat(request: web.Request) -> web.Response:
    beat = HeartbeatIn.model_validate_json(request_body(request))
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


@takes_body(SMALL_BODY_BYTES)
async def update_status(request: web.Request) -> web.Response:
    signal_id = request.match_info["signal_id"]
    update = StatusUpdate.model_validate_json(request_body(request))
    result = await request.app[STORE].set_status([signal_id], update.status, update.note,
                                                 ANALYST_ACTOR)
    if result.not_found:
        raise ApiError(404, "no such signal", signal_id=signal_id)
    return json_response({"signal_id": signal_id, "status": update.status})


@takes_body(BULK_STATUS_BODY_BYTES)
async def bulk_update_status(request: web.Request) -> web.Response:
    update = BulkStatusUpdate.model_validate_json(request_body(request))
    result = await request.app[STORE].set_status(update.signal_ids, update.status, update.note,
                                                 ANALYST_ACTOR)
    return json_response({"updated": result.updated, "not_found": result.not_found,
                          "status": update.status})


def _volume_error(field: str, message: str) -> ApiError:
    return ApiError(422, "validation failed",
                    details=[{"loc": [field], "msg": message, "type": "value_error"}])


def _widened(span_seconds: float, minimum: int, most: int) -> int:
    """The first width of AUTO_BUCKETS from `minimum` on that draws the span in at most `most`
    buckets, or as many whole days as it takes."""
    for width in AUTO_BUCKETS:
        if width >= minimum and span_seconds / width <= most:
            return width
    return math.ceil(span_seconds / most / 86400) * 86400


def _bucket_seconds(bucket: str | None, span_seconds: float) -> int:
    if bucket is None:  # one less than the limit: aligning the first bucket may add one
        return _widened(span_seconds, DEFAULT_BUCKET_SECONDS, MAX_VOLUME_BUCKETS - 1)
    if bucket.strip().lower() == "auto":
        return _widened(span_seconds, MIN_BUCKET_SECONDS, AUTO_BUCKET_TARGET)
    try:
        seconds = parse_duration(bucket)
    except ValueError as exc:
        raise _volume_error("bucket", f"{exc}, or auto") from None
    if not MIN_BUCKET_SECONDS <= seconds <= MAX_BUCKET_SECONDS or seconds != int(seconds):
        raise _volume_error("bucket", "a bucket is a whole number of seconds from 1m to 3660d")
    return int(seconds)


async def signal_volume(request: web.Request) -> web.Response:
    """Signals per bucket of event time, by severity, every bucket of the window included."""
    query = VolumeQuery.model_validate(dict(request.query))
    store = request.app[STORE]
    until_ns = timeutil.parse_ns(query.until) if query.until else timeutil.now_ns()
    if query.since:
        since_ns = timeutil.parse_ns(query.since)
    else:  # the whole history, or the last day when there is none yet
        first = await store.first_signal_ts(after=GO_ZERO_TIME)
        first_ns = timeutil.parse_ns(first) if first else until_ns
        since_ns = first_ns if first_ns < until_ns else until_ns - 86_400 * NS
    if since_ns >= until_ns:
        raise _volume_error("since", "since must be before until")
    bucket = _bucket_seconds(query.bucket, (until_ns - since_ns) / NS)
    first_start = since_ns // NS // bucket * bucket
    count = math.ceil((until_ns / NS - first_start) / bucket)
    if count > MAX_VOLUME_BUCKETS:
        raise _volume_error("bucket", f"{count} buckets; use a wider bucket or a shorter "
                                      f"window (at most {MAX_VOLUME_BUCKETS})")
    volume = await store.signal_volume(timeutil.format_utc(since_ns),
                                       timeutil.format_utc(until_ns), bucket)
    severities = SEVERITIES[::-1]
    buckets = []
    for index in range(count):
        start = first_start + index * bucket
        counts = volume.get(start, {})
        # A bucket aligned to the epoch may begin before year 1: it is shown from year 1.
        buckets.append({"start": timeutil.format_utc(max(start * NS, EARLIEST_NS)),
                        **{severity: counts.get(severity, 0) for severity in severities}})
    return json_response({"bucket_seconds": bucket, "since": timeutil.format_utc(since_ns),
                          "until": timeutil.format_utc(until_ns), "buckets": buckets})


async def list_agents(request: web.Request) -> web.Response:
    query = AgentQuery.model_validate(dict(request.query))
    agents = await request.app[STORE].list_agents(query)
    return json_response({"count": len(agents), "heartbeats": agents})


async def stats(request: web.Request) -> web.Response:
    return json_response(await request.app[STORE].stats())


async def jobs(request: web.Request) -> web.Response:
    board = request.app[JOB_BOARD]
    forwarder = board.forwarder
    forwarding: dict[str, object] = {"sinks": [], "backlog": None}
    if forwarder is not None:
        forwarding = {
            "sinks": [sink.name for sink in forwarder.sinks],
            "min_severity": forwarder.severities[0],
            "backlog": await request.app[STORE].forward_backlog(forwarder.severities),
            "consecutive_failures": forwarder.consecutive_failures,
            "retry_in_seconds": round(forwarder.retry_in, 3),
        }
    return json_response({"jobs": board.snapshot(), "forwarding": forwarding})


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
    """Counters as they stand, plus gauges read now: agents and signals by status, forwarding
    backlog, database size."""
    registry, store = request.app[METRICS], request.app[STORE]
    forwarder = request.app[JOB_BOARD].forwarder
    with contextlib.suppress(StoreUnavailable, TimeoutError):
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            counts = await store.stats()
            backlog = (await store.forward_backlog(forwarder.severities)
                       if forwarder is not None and forwarder.sinks else None)
        for status in ("active", "stale"):
            registry.agents.labels(status=status).set(counts["agents"][status])
        for status in STATUSES:
            registry.signals.labels(status=status).set(counts["by_status"].get(status, 0))
        for severity in SEVERITIES:
            registry.open_signals.labels(severity=severity).set(
                counts["open_by_severity"].get(severity, 0))
        if backlog is not None:
            registry.forward_backlog.set(backlog)
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
