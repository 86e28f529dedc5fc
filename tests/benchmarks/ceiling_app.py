"""The ceiling: a bare aiohttp handler that validates a signal with pydantic and stores nothing.

The benchmark runs it in turns with the real server; the ratio of the two is the figure that
holds on a noisy machine. The model mirrors the field rules of `santamon.models.SignalIn` but
walks `context` through pydantic like a plain model would, as the issue's ceiling did.

    python tests/benchmarks/ceiling_app.py --port 18081 --api-key KEY
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

MAX_CONTEXT_BYTES = 100 * 1024
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)

Tag = Annotated[str, Field(min_length=1, max_length=128)]


class CeilingSignal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    signal_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    ts: str = Field(max_length=64)
    host_id: str = Field(min_length=1, max_length=255)
    rule_id: str = Field(min_length=1, max_length=128)
    rule_description: str | None = Field(default=None, max_length=4096)
    status: Literal["open"] = "open"
    severity: Literal["critical", "high", "medium", "low", "info"]
    title: str = Field(min_length=1, max_length=1024)
    tags: list[Tag] | None = Field(default=None, max_length=64)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("ts")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise ValueError("not an RFC 3339 timestamp")
        y, mo, d, h, mi, s = (int(g) for g in match.groups()[:6])
        datetime(y, mo, d, h, mi, s, tzinfo=UTC)
        return value


_BATCH = TypeAdapter(list[CeilingSignal])


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def create_app(api_key: str) -> web.Application:
    expected = api_key.encode()

    async def ingest(request: web.Request) -> web.Response:
        supplied = request.headers.get("X-API-Key", "").encode()
        if not hmac.compare_digest(supplied, expected):
            return _json({"error": "invalid API key"}, status=401)
        body = await request.read()
        try:
            if body.lstrip()[:1] == b"[":
                signals = _BATCH.validate_json(body)
            else:
                signal = CeilingSignal.model_validate_json(body)
                if len(body) > MAX_CONTEXT_BYTES + 16 * 1024:
                    return _json({"error": "context too large"}, status=413)
                return _json({"status": "received", "signal_id": signal.signal_id,
                              "duplicate": False})
        except ValidationError as exc:
            return _json({"error": "invalid signal", "details": exc.errors(include_url=False,
                                                                          include_input=False)},
                         status=422)
        return _json({"status": "received", "received": len(signals), "duplicates": 0,
                      "results": [{"signal_id": s.signal_id, "duplicate": False}
                                  for s in signals]})

    async def health(_request: web.Request) -> web.Response:
        return _json({"status": "healthy"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/ingest", ingest)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--api-key", default=os.environ.get("SANTAMON_API_KEY", ""))
    args = parser.parse_args()
    if len(args.api_key) < 16:
        parser.error("--api-key (or SANTAMON_API_KEY) of at least 16 characters is required")
    web.run_app(create_app(args.api_key), host="127.0.0.1", port=args.port,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
