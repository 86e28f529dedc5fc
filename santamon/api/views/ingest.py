"""What agents send: signals (one or a batch) and heartbeats.

In this order: the body is validated (400, 422); the agent guard (auth/agents.py) lets it in
(a key bound to one host sends for that host only, 403; new agent ids per key are bounded,
503); only then is what is too large cut to fit, which may take a while; each signal is then
marked with the active silence it matches, checked against what will be stored (the title as
cut), as an analyst sees it and silences it; and the rest stored. A batch naming any other
host than its key's is refused whole (403): the agent sends one host per key, so only a sender
that is not a correct agent is refused. A silence never refuses anything: a silenced signal is
stored like any other, only kept quiet.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
from aiohttp import web
from pydantic import Field, TypeAdapter

from ...domain.problems import CONTEXT_SHORTENED
from ...domain.shortening import cut_list, cut_text, encode_context, shorten_context
from ...store import NewSignal
from ..models import (
    MAX_BATCH,
    MAX_CONTEXT_BYTES,
    MAX_DESCRIPTION_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    HeartbeatIn,
    SignalIn,
)
from ..responses import json_response
from ..silencing import SilenceCache
from ..state import (
    AGENT_GUARD,
    AGENT_ID,
    BODY,
    CALLER,
    LIVENESS,
    METRICS,
    PROBLEMS,
    SILENCES,
    STORE,
)

_signal_batch = TypeAdapter(Annotated[list[SignalIn], Field(max_length=MAX_BATCH)])


async def _to_new_signal(signal: SignalIn, silences: SilenceCache) -> NewSignal:
    """The signal as stored: what is too large is cut (domain.shortening), never refused, since
    the agent would retry a refused signal forever; then marked with the silence it matches."""
    context_json = encode_context(signal.context)
    original_context_bytes = None
    if len(context_json) > MAX_CONTEXT_BYTES:
        original_context_bytes = len(context_json)
        # Rare, and up to a few hundred milliseconds for a pathological 8 MiB context.
        context_json = await asyncio.to_thread(shorten_context, signal.context,
                                               MAX_CONTEXT_BYTES)
    title = cut_text(signal.title, MAX_TITLE_CHARS)
    description = signal.rule_description
    if description is not None:
        description = cut_text(description, MAX_DESCRIPTION_CHARS)
    tags = signal.tags or []
    fitted_tags = [cut_text(tag, MAX_TAG_CHARS) for tag in cut_list(tags, MAX_TAGS)]
    shortened = tuple(field for field, cut in (
        ("context", original_context_bytes is not None),
        ("title", title is not signal.title),
        ("rule_description", description is not signal.rule_description),
        ("tags", fitted_tags != tags),
    ) if cut)
    return NewSignal(
        signal_id=signal.signal_id, ts=signal.ts, host_id=signal.host_id,
        rule_id=signal.rule_id, severity=signal.severity, title=title,
        tags_json=orjson.dumps(fitted_tags), context_json=context_json,
        rule_description=description,
        silence_id=silences.match(signal.rule_id, signal.host_id, signal.severity, title),
        shortened=shortened, original_context_bytes=original_context_bytes)


def _count_shortened(request: web.Request, signals: list[NewSignal],
                     stored: list[bool]) -> None:
    """Signals stored shortened: counted, and an oversized context shown in the console's
    agent connection problems, by the address that sent it."""
    for signal, new in zip(signals, stored, strict=True):
        if not (new and signal.shortened):
            continue
        for field in signal.shortened:
            request.app[METRICS].ingest_shortened.labels(field=field).inc()
        if signal.original_context_bytes is not None:
            request.app[PROBLEMS].record(
                request.remote, CONTEXT_SHORTENED,
                f"signal {signal.signal_id} of {signal.host_id} ({signal.rule_id}): context of "
                f"{signal.original_context_bytes:,} bytes stored as "
                f"{len(signal.context_json):,}")


async def ingest(request: web.Request) -> web.Response:
    """One signal object, or a JSON array of up to 1,000 (all stored, or none)."""
    body = request[BODY]
    store, silences = request.app[STORE], request.app[SILENCES]
    if body.lstrip()[:1] == b"[":
        received = _signal_batch.validate_json(body)
        hosts = {s.host_id for s in received}
        if len(hosts) == 1:
            request[AGENT_ID] = next(iter(hosts))
        await request.app[AGENT_GUARD].admit(request, request[CALLER],
                                             [s.host_id for s in received], "signal")
        batch = [await _to_new_signal(s, silences) for s in received]
        stored = await store.insert_signals(batch) if batch else []
        request.app[METRICS].count_ingest(sum(stored), len(stored) - sum(stored))
        _count_shortened(request, batch, stored)
        return json_response({
            "status": "received",
            "received": len(batch),
            "stored": sum(stored),
            "duplicates": len(stored) - sum(stored),
            "results": [{"signal_id": s.signal_id, "duplicate": not new}
                        for s, new in zip(batch, stored, strict=True)],
        })
    signal_in = SignalIn.model_validate_json(body)
    request[AGENT_ID] = signal_in.host_id
    await request.app[AGENT_GUARD].admit(request, request[CALLER], [signal_in.host_id], "signal")
    signal = await _to_new_signal(signal_in, silences)
    (stored,) = await store.insert_signals([signal])
    request.app[METRICS].count_ingest(int(stored), int(not stored))
    _count_shortened(request, [signal], [stored])
    return json_response({"status": "received", "signal_id": signal.signal_id,
                          "duplicate": not stored})


async def heartbeat(request: web.Request) -> web.Response:
    """Acknowledged once held in memory: liveness is written within a flush interval."""
    beat = HeartbeatIn.model_validate_json(request[BODY])
    request[AGENT_ID] = beat.agent_id
    caller = request[CALLER]
    await request.app[AGENT_GUARD].admit(request, caller, [beat.agent_id], "heartbeat")
    request.app[LIVENESS].beat(beat.agent_id, beat.timestamp, version=beat.version,
                               os_version=beat.os_version, uptime_seconds=beat.uptime_seconds,
                               auth=caller.agent_auth)
    return json_response({"status": "ok", "agent_id": beat.agent_id})
