"""JSON in and out: every response body of the API is made here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    """An error the client should see as `{"error": message, **extra}` with this status."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def json_response(data: Any, *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status,
                        content_type="application/json", headers=headers)


def error_response(status: int, message: str, *, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status=status, headers=headers)
