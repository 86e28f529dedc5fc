"""Logging setup: one line per record, logfmt-style text by default or JSON.

Structured fields travel in `extra={"fields": {...}}` so both formats render the same data.
Values are escaped so a request path cannot forge extra log lines.
"""

from __future__ import annotations

import atexit
import copy
import datetime as dt
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any

import orjson

LOG_FORMATS = ("text", "json")
ACCESS_LOGGER = "santamon.access"


def _timestamp(record: logging.LogRecord) -> str:
    return (
        dt.datetime.fromtimestamp(record.created, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    # JSON string quoting escapes quotes, backslashes and control characters.
    return orjson.dumps(text).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, process_fields: dict[str, Any] | None = None) -> None:
        """`process_fields` end every line: which worker process wrote it."""
        super().__init__()
        self._process_fields = process_fields or {}

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.isprintable():
            message = orjson.dumps(message).decode()
        parts = [_timestamp(record), record.levelname, record.name, message]
        parts += [f"{k}={_text_value(v)}"
                  for k, v in (_fields(record) | self._process_fields).items()]
        line = " ".join(parts)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, process_fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._process_fields = process_fields or {}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in (_fields(record) | self._process_fields).items():
            doc.setdefault(key, value)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return orjson.dumps(doc, default=str).decode()


class _Handoff(QueueHandler):
    """Puts records on the queue with the message and traceback already rendered, so the
    writer thread never touches the caller's objects."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


_listener: QueueListener | None = None


def configure_logging(
    fmt: str = "text", level: int | str = logging.INFO, stream: IO[str] | None = None,
    *, worker: int | None = None,
) -> None:
    """Send every logger's records to one handler on stderr (journald picks it up); in a
    worker process (`serve --workers N`) every line says `worker=<its number>`.

    Records are formatted and written by a thread of their own: a slow or blocked stderr
    must never stall the event loop.
    """
    global _listener
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    stop_logging()
    handler = logging.StreamHandler(stream or sys.stderr)
    process_fields = {} if worker is None else {"worker": worker}
    handler.setFormatter(JsonFormatter(process_fields) if fmt == "json"
                         else TextFormatter(process_fields))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(_Handoff(records))
    root.setLevel(level)
    _listener = QueueListener(records, handler)
    _listener.start()
    # aiohttp's own access log would be a second, unstructured line per request.
    logging.getLogger("aiohttp.access").disabled = True


@atexit.register
def stop_logging() -> None:
    """Write out every queued record and stop the writer thread."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def log_request(
    method: str,
    path: str,
    status: int,
    duration: float,
    *,
    agent_id: str | None = None,
    remote: str | None = None,
) -> None:
    """The one line per request. Only these fields: headers, bodies and queries can carry
    keys or signal content and are never logged."""
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logging.WARNING if status >= 500 else logging.INFO
    if not logger.isEnabledFor(level):
        return
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration * 1000, 3),
        "agent_id": agent_id,
        "remote": remote,
    }
    logger.log(level, "request", extra={"fields": fields})
