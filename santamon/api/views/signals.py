"""Signals for analysts: pages, one signal, triage, volume over time and totals."""

from __future__ import annotations

import math
from dataclasses import replace

from aiohttp import web

from ... import timeutil
from ...config import parse_duration
from ...domain.signals import SEVERITIES
from ...store import SignalFilter
from ..models import (
    MAX_FILTER_TRIAGE,
    BulkStatusUpdate,
    GroupQuery,
    SignalFilterFields,
    SignalIdQuery,
    SignalQuery,
    StatusUpdate,
    TriageFilter,
    VolumeQuery,
)
from ..responses import ApiError, json_response
from ..state import BODY, CALLER, CLOCK, LIVENESS, STORE

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
GO_ZERO_TIME_NS = timeutil.parse_ns("0001-01-01T00:00:00Z")  # also the earliest time there is


SILENCED = {"false": False, "true": True, "all": None}


def signal_filter(fields: SignalFilterFields, limit: int = 100,
                  cursor: str | None = None) -> SignalFilter:
    return SignalFilter(
        status=None if fields.status == "all" else fields.status,
        severities=tuple(fields.severity) if fields.severity else None,
        host_id=fields.host_id, rule_id=fields.rule_id, search=fields.search,
        since=fields.since, until=fields.until, silenced=SILENCED[fields.silenced],
        limit=limit, cursor=cursor)


async def list_signals(request: web.Request) -> web.Response:
    query = SignalQuery.model_validate(dict(request.query))
    page = await request.app[STORE].list_signals(signal_filter(query, query.limit,
                                                               query.cursor))
    return json_response({"count": len(page.signals), "signals": page.signals,
                          "next_cursor": page.next_cursor})


async def signal_groups(request: web.Request) -> web.Response:
    query = GroupQuery.model_validate(dict(request.query))
    page = await request.app[STORE].signal_groups(signal_filter(query, query.limit,
                                                                query.cursor))
    return json_response({"count": len(page.groups), "groups": page.groups,
                          "next_cursor": page.next_cursor})


async def get_signal(request: web.Request) -> web.Response:
    return await _signal_detail(request, request.match_info["signal_id"])


async def get_signal_by_query(request: web.Request) -> web.Response:
    """A browser resolves the path segments `.` and `..` away (`%2E%2E` too: the URL standard
    decodes them first), so the console names the signal in the query instead."""
    return await _signal_detail(request, SignalIdQuery.model_validate(dict(request.query))
                                .signal_id)


async def _signal_detail(request: web.Request, signal_id: str) -> web.Response:
    signal = await request.app[STORE].get_signal(signal_id)
    if signal is None:
        raise ApiError(404, "no such signal", signal_id=signal_id)
    if signal["silence"] is not None:
        signal["silence"] = signal["silence"].as_dict(timeutil.format_utc(request.app[CLOCK]()))
    return json_response(signal)


async def update_status(request: web.Request) -> web.Response:
    signal_id = request.match_info["signal_id"]
    update = StatusUpdate.model_validate_json(request[BODY])
    result = await request.app[STORE].set_status([signal_id], update.status, update.note,
                                                 request[CALLER].actor)
    if result.not_found:
        raise ApiError(404, "no such signal", signal_id=signal_id)
    return json_response({"signal_id": signal_id, "status": update.status})


async def bulk_update_status(request: web.Request) -> web.Response:
    update = BulkStatusUpdate.model_validate_json(request[BODY])
    store, actor = request.app[STORE], request[CALLER].actor
    if update.signal_ids is not None:
        result = await store.set_status(update.signal_ids, update.status, update.note, actor)
        return json_response({"updated": result.updated, "not_found": result.not_found,
                              "status": update.status, "more": False})
    query = signal_filter(update.filter or TriageFilter())
    if update.group is not None:
        for field in ("rule_id", "host_id"):
            given = getattr(query, field)
            if given is not None and given != getattr(update.group, field):
                raise ApiError(422, "validation failed", details=[{
                    "loc": ["filter", field], "type": "value_error",
                    "msg": f"the filter's {field} is not the group's"}])
        query = replace(query, rule_id=update.group.rule_id, host_id=update.group.host_id)
    changed, more = await store.set_status_matching(query, update.status, update.note, actor,
                                                    MAX_FILTER_TRIAGE)
    return json_response({"updated": changed, "not_found": [], "status": update.status,
                          "more": more})


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
        first = await store.first_signal_ts(
            not_before=timeutil.format_utc(GO_ZERO_TIME_NS + 1))
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
        buckets.append({"start": timeutil.format_utc(max(start * NS, GO_ZERO_TIME_NS)),
                        **{severity: counts.get(severity, 0) for severity in severities}})
    return json_response({"bucket_seconds": bucket, "since": timeutil.format_utc(since_ns),
                          "until": timeutil.format_utc(until_ns), "buckets": buckets})


async def stats(request: web.Request) -> web.Response:
    await request.app[LIVENESS].flush()  # agents counted with every heartbeat acknowledged
    return json_response(await request.app[STORE].stats())
