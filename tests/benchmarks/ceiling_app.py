"""The ceiling: a bare aiohttp handler that validates a signal with pydantic and stores nothing.

The benchmark runs it in turns with the real server; the ratio of the two is the figure that
holds on a noisy machine. The model is a frozen copy of the field rules of
`santamon.models.SignalIn` (the context size check after re-encoding), walking `context`
through pydantic as a plain model does, like the issue's ceiling: optimising the service's
model must not move the ceiling. Timestamps go through the service's own parser, so both
sides pay the same for them.

    python tests/benchmarks/ceiling_app.py --port 18081 --api-key KEY
"""

from __future__ import annotations

import argparse
import hmac
import os
from typing import Annotated, Any, Literal

import orjson
import uvloop
from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from santamon.timeutil import normalize

MAX_CONTEXT_BYTES = 100_000


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _status_or_open(value: Any) -> Any:
    return "open" if value is None else _lower(value)


Tag = Annotated[str, Field(max_length=64)]


class CeilingSignal(BaseModel):
    """Field for field the rules of santamon.models.SignalIn when this suite was written."""

    model_config = ConfigDict(extra="ignore")

    signal_id: str = Field(min_length=1, max_length=256)
    ts: Annotated[str, AfterValidator(normalize)]
    host_id: str = Field(min_length=1, max_length=255)
    rule_id: str = Field(min_length=1, max_length=128)
    rule_description: str | None = Field(None, max_length=2000)
    status: Annotated[Literal["open", "acknowledged", "resolved"],
                      BeforeValidator(_status_or_open)] = "open"
    severity: Annotated[Literal["info", "low", "medium", "high", "critical"],
                        BeforeValidator(_lower)]
    title: str = Field(min_length=1, max_length=512)
    tags: list[Tag] | None = Field(None, max_length=50)
    context: dict[str, Any]


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
                if any(len(orjson.dumps(s.context)) > MAX_CONTEXT_BYTES for s in signals):
                    return _json({"error": "context too large"}, status=413)
            else:
                signal = CeilingSignal.model_validate_json(body)
                if len(orjson.dumps(signal.context)) > MAX_CONTEXT_BYTES:
                    return _json({"error": "context too large"}, status=413)
                return _json({"status": "received", "signal_id": signal.signal_id,
                              "duplicate": False})
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False, include_input=False)
            return _json({"error": "invalid signal", "details": details}, status=422)
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
    # The same event loop as `santamon serve`, so the ratio compares like with like.
    web.run_app(create_app(args.api_key), host="127.0.0.1", port=args.port,
                access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
