"""Silences: create (optionally resolving what they match), preview, list, expire."""

from __future__ import annotations

from aiohttp import web

from ... import timeutil
from ...config import parse_duration
from ...domain.silences import MAX_SILENCE_SECONDS, Matchers, NewSilence
from ...store import Silence
from ..models import SilenceIn, SilenceMatchersIn, SilenceQuery
from ..responses import ApiError, json_response
from ..state import BODY, CALLER, CLOCK, SILENCES, STORE

NS = 1_000_000_000
# Every silence ever made is kept; "expired" and "all" look through this many, newest first.
MAX_SILENCES_LISTED = 10_000


def _matchers(body: SilenceMatchersIn) -> Matchers:
    return Matchers(rule_id=body.rule_id, host_id=body.host_id, severity=body.severity,
                    title=body.title)


def _out(request: web.Request, silence: Silence) -> dict:
    return silence.as_dict(timeutil.format_utc(request.app[CLOCK]()))


def _ends_at(body: SilenceIn, now_ns: int) -> str:
    if body.duration is not None:
        return timeutil.format_utc(now_ns + int(parse_duration(body.duration) * NS))
    assert body.ends_at is not None
    ends_ns = timeutil.parse_ns(body.ends_at)
    if not now_ns < ends_ns <= now_ns + MAX_SILENCE_SECONDS * NS:
        raise ApiError(422, "validation failed", details=[{
            "loc": ["body", "ends_at"], "type": "value_error",
            "msg": "a silence ends in the future and at most 90 days from now"}])
    return timeutil.format_utc(ends_ns)


async def create_silence(request: web.Request) -> web.Response:
    body = SilenceIn.model_validate_json(request[BODY])
    new = NewSilence(_matchers(body), body.comment, request[CALLER].actor,
                     _ends_at(body, request.app[CLOCK]()))
    silence, resolved = await request.app[STORE].create_silence(new, body.resolve_matching)
    await request.app[SILENCES].reload()  # the next signal already meets it
    return json_response({"silence": _out(request, silence), "resolved": resolved},
                         status=201)


async def preview_silence(request: web.Request) -> web.Response:
    matchers = _matchers(SilenceMatchersIn.model_validate(dict(request.query)))
    return json_response({"open_matching":
                          await request.app[STORE].count_open_matching(matchers)})


async def list_silences(request: web.Request) -> web.Response:
    query = SilenceQuery.model_validate(dict(request.query))
    store, now = request.app[STORE], timeutil.format_utc(request.app[CLOCK]())
    if query.state == "active":
        silences = await store.list_silences(active_at=now, limit=query.limit)
    else:
        silences = [s for s in await store.list_silences(limit=MAX_SILENCES_LISTED)
                    if query.state == "all" or not s.active(now)][:query.limit]
    return json_response({"count": len(silences),
                          "silences": [s.as_dict(now) for s in silences]})


async def expire_silence(request: web.Request) -> web.Response:
    raw = request.match_info["silence_id"]
    silence = None
    if raw.isascii() and raw.isdigit() and len(raw) < 19:
        silence = await request.app[STORE].expire_silence(int(raw), request[CALLER].actor)
    if silence is None:
        raise ApiError(404, "no such silence", silence_id=raw)
    await request.app[SILENCES].reload()
    return json_response(_out(request, silence))
