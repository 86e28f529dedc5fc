"""What agents send: signals (one or a batch) and heartbeats."""

from __future__ import annotations

from typing import Annotated

import orjson
from aiohttp import web
from pydantic import Field, TypeAdapter

from ...store import NewSignal
from ..models import MAX_BATCH, MAX_CONTEXT_BYTES, HeartbeatIn, SignalIn
from ..responses import ApiError, json_response
from ..state import AGENT_ID, LIVENESS, METRICS, STORE

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
        rule_description=signal.rule_description)


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


async def heartbeat(request: web.Request) -> web.Response:
    """Acknowledged once held in memory: liveness is written within a flush interval."""
    beat = HeartbeatIn.model_validate_json(await request.read())
    request[AGENT_ID] = beat.agent_id
    request.app[LIVENESS].beat(beat.agent_id, beat.timestamp, version=beat.version,
                               os_version=beat.os_version, uptime_seconds=beat.uptime_seconds)
    return json_response({"status": "ok", "agent_id": beat.agent_id})
