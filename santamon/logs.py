"""Logging setup: one line per record, logfmt-style text by default or JSON.

Structured fields travel in `extra={"fields": {...}}` so both formats render the same data.
Values are escaped so a request path cannot forge extra log lines.

Records wait in a bounded queue for a thread of their own that writes them: when the stream
is blocked (a stuck journald, a full pipe), new records are dropped and counted, and shutdown
waits for the writer only a moment.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime as dt
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any

import orjson

LOG_FORMATS = ("text", "json")
ACCESS_LOGGER = "santamon.access"
LOG_QUEUE_RECORDS = 10_000  # ~1 KB each: at most ~10 MB waiting for a blocked stream
LOG_STOP_SECONDS = 2.0  # how long shutdown waits for queued records to be written
LOG_GATHER_SECONDS = 0.02  # how long the log thread lets lines gather after writing some
# aiohttp logs every request it cannot parse; a client sending garbage must not flood the log.
PROTOCOL_ERRORS_PER_MINUTE = 10
SERVER_LOGGER = "aiohttp.server"


_second: tuple[int, str] = (-1, "")  # the last second formatted, as it starts every line


def _timestamp(created: float) -> str:
    global _second
    seconds = int(created)
    micros = round((created - seconds) * 1e6)  # as datetime rounds
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, 0
    if _second[0] != seconds:  # most lines share their second with the line before
        _second = (seconds, dt.datetime.fromtimestamp(seconds, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{micros // 1000:03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def _escape_unprintable(text: str) -> str:
    """JSON-style \\u escapes for what orjson leaves raw but a terminal does not show as it
    is: DEL and C1 controls, format characters (U+202E reverses the text after it),
    separators other than the space."""
    if text.isascii() and "\x7f" not in text:
        return text  # the common case, and orjson has escaped the rest of ASCII already
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        else:
            out.extend(f"\\u{unit:04x}" for unit in _utf16_units(char))
    return "".join(out)


def _utf16_units(char: str) -> tuple[int, ...]:
    code = ord(char)
    if code < 0x10000:
        return (code,)
    code -= 0x10000
    return (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


def _quoted(text: str) -> str:
    # JSON string quoting escapes quotes, backslashes and control characters.
    return _escape_unprintable(orjson.dumps(text).decode())


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if text and text.isprintable() and " " not in text and '"' not in text and "=" not in text:
        return text
    return _quoted(text)


class LineFormatter(logging.Formatter):
    """One line per record, from plain values (`line`), so that the request line can be
    rendered without a LogRecord (log_request)."""

    def __init__(self, process_fields: dict[str, Any] | None = None) -> None:
        """`process_fields` end every line: which worker process wrote it."""
        super().__init__()
        self._process_fields = process_fields or {}

    def format(self, record: logging.LogRecord) -> str:
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         _fields(record), record.exc_text)

    def line(self, created: float, level: str, logger: str, message: str,
             fields: dict[str, Any], exc_text: str | None = None) -> str:
        raise NotImplementedError


class TextFormatter(LineFormatter):
    def line(self, created: float, level: str, logger: str, message: str,
             fields: dict[str, Any], exc_text: str | None = None) -> str:
        if not message.isprintable():
            message = _quoted(message)
        parts = [_timestamp(created), level, logger, message]
        parts += [f"{k}={_text_value(v)}" for k, v in (fields | self._process_fields).items()]
        line = " ".join(parts)
        if exc_text:
            line += "\n" + exc_text
        return line


class JsonFormatter(LineFormatter):
    def line(self, created: float, level: str, logger: str, message: str,
             fields: dict[str, Any], exc_text: str | None = None) -> str:
        doc: dict[str, Any] = {"ts": _timestamp(created), "level": level, "logger": logger,
                               "msg": message}
        for key, value in (fields | self._process_fields).items():
            doc.setdefault(key, value)
        if exc_text:
            doc["exc"] = exc_text
        return _escape_unprintable(orjson.dumps(doc, default=str).decode())


_dropped = 0
_dropped_lock = threading.Lock()


def dropped_records() -> int:
    """Records (request lines included) dropped because the stream did not keep up."""
    return _dropped


def _count_dropped() -> None:
    global _dropped
    with _dropped_lock:
        _dropped += 1


_WAKE = object()  # on the queue: request lines are waiting (_Backlog.add_line)

# A request line's fields, in the order its values are handed over and rendered.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "agent_id", "remote")


class _Backlog:
    """What waits for the log thread: records on a queue, and the request lines as bare values
    (a tuple each: no LogRecord, no handler chain, no queue put and no rendering on the thread
    that serves the request; issue 15). One bound for both: records and lines waiting, and
    those in the batch the thread is writing, count alike, so a blocked stream holds at most
    `limit` whatever the thread took out last."""

    def __init__(self, limit: int) -> None:
        self.records: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = limit
        self._lock = threading.Lock()
        self._lines: list[tuple[Any, ...]] = []
        self._held = 0  # waiting and being written; under _lock

    def _reserve(self) -> bool:
        """A place in the bound, or False (counted as dropped). Under _lock."""
        if self._held >= self._limit:
            return False
        self._held += 1
        return True

    def offer(self, record: logging.LogRecord) -> None:
        with self._lock:
            placed = self._reserve()
        if placed:
            self.records.put(record)
        else:
            _count_dropped()

    def add_line(self, values: tuple[Any, ...]) -> None:
        """`values`: the time, the level's name, then one value per REQUEST_FIELDS."""
        with self._lock:
            placed = self._reserve()
            if placed:
                self._lines.append(values)
            first = placed and len(self._lines) == 1
        if not placed:
            _count_dropped()
        elif first:  # the log thread takes every line waiting when it gets to this
            self.records.put(_WAKE)

    def take_lines(self) -> list[tuple[Any, ...]]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def written(self, count: int) -> None:
        """`count` records and lines are out of the bound (written, or given up)."""
        with self._lock:
            self._held -= count


class _Handoff(QueueHandler):
    """Puts records on the backlog with the message and traceback already rendered, so the
    writer thread never touches the caller's objects; drops them when the backlog is full."""

    def __init__(self, backlog: _Backlog) -> None:
        super().__init__(backlog.records)
        self._backlog = backlog

    def handle(self, record: logging.LogRecord) -> logging.LogRecord | bool:
        # Without the handler lock Handler.handle takes: the backlog is safe across threads.
        passed = self.filter(record)
        if passed:
            self.emit(passed if isinstance(passed, logging.LogRecord) else record)
        return passed

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not record.args and not record.exc_info and isinstance(record.msg, str):
            return record  # nothing to render: no copy needed
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        self._backlog.offer(record)


class _Writer(QueueListener):
    """Formats and writes each record, on a thread of its own. Not a logging.Handler: one
    blocked in a write would hold its handler lock, which logging.shutdown() at exit waits
    for."""

    def __init__(self, backlog: _Backlog, formatter: LineFormatter,
                 write: Callable[[str], None]) -> None:
        super().__init__(backlog.records)
        self._backlog, self._formatter, self._write = backlog, formatter, write

    def _monitor(self) -> None:
        """Write all that has queued in one go, then let more gather for a moment: under load
        one wake-up and one write per LOG_GATHER_SECONDS instead of one per request line
        (a thread switch each); a line after a quiet spell is written at once."""
        records = self.queue
        while True:
            batch = [records.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(records.get_nowait())
            lines: list[str] = []
            taken = 0
            stopping = False
            for record in batch:
                stopping = record is self._sentinel
                if record is _WAKE or stopping:  # stopping: the lines logged before it too
                    request_lines = self._backlog.take_lines()
                    taken += len(request_lines)
                    lines += [line for values in request_lines
                              if (line := self._request_line(values))]
                    if stopping:
                        break
                    continue
                taken += 1
                with contextlib.suppress(Exception):  # never worth the writer thread
                    lines.append(self._formatter.format(record) + "\n")
            with contextlib.suppress(Exception):
                self._write("".join(lines))
            self._backlog.written(taken)
            if stopping:
                return
            time.sleep(LOG_GATHER_SECONDS)

    def _request_line(self, values: tuple[Any, ...]) -> str | None:
        """A request line, rendered here, in the batch; None (that line only is lost) if a
        value cannot be."""
        created, level, *fields = values
        try:
            return self._formatter.line(created, level, ACCESS_LOGGER, "request",
                                        dict(zip(REQUEST_FIELDS, fields, strict=True))) + "\n"
        except Exception:
            return None

    def stop_within(self, seconds: float) -> None:
        """Write out what is queued, waiting at most `seconds`: a blocked stream must not hold
        up shutdown (the thread is a daemon and goes with the process)."""
        self.enqueue_sentinel()
        if self._thread is not None:
            self._thread.join(seconds)
            self._thread = None


class ProtocolErrorFilter(logging.Filter):
    """For aiohttp's server logger, which logs a request it could not parse with the bytes at
    fault (keys and session cookies included) and a traceback, once per such request: keep
    one line naming the client and the kind of error, no more than PROTOCOL_ERRORS_PER_MINUTE
    of them, and count the rest."""

    def __init__(self) -> None:
        super().__init__()
        self._minute = float("-inf")  # time.monotonic() when the current minute began
        self._logged = 0  # records let through in the current minute
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        # aiohttp's messages name the client address only; the exception's text and its
        # traceback are what carry the request's bytes.
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage() + (f" ({type(exc).__name__})" if exc else "")
        now = time.monotonic()
        if now - self._minute >= 60.0:
            self._minute, self._logged = now, 0
        if self._logged >= PROTOCOL_ERRORS_PER_MINUTE:
            self._suppressed += 1
            return False
        self._logged += 1
        if self._suppressed:
            message += f"; {self._suppressed} more suppressed"
            self._suppressed = 0
        record.msg, record.args = message, None
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_listener: _Writer | None = None
_backlog: _Backlog | None = None  # while the log thread runs: where request lines go


def configure_logging(
    fmt: str = "text", level: int | str = logging.INFO, stream: IO[str] | None = None,
    *, worker: int | None = None,
) -> None:
    """Send every logger's records to one handler on stderr (journald picks it up); in a
    worker process (`serve --workers N`) every line says `worker=<its number>`.

    Records are formatted and written by a thread of their own: a slow or blocked stderr
    must never stall the event loop.
    """
    global _listener, _backlog
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    stop_logging()
    backlog = _Backlog(LOG_QUEUE_RECORDS)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(_Handoff(backlog))
    root.setLevel(level)
    # No line shows where a record was made, nor its thread or process (a worker's number is
    # a field): not looking them up saves a frame walk and three calls on every record, the
    # request line included (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    process_fields = {} if worker is None else {"worker": worker}
    formatter = JsonFormatter(process_fields) if fmt == "json" else TextFormatter(process_fields)
    _listener = _Writer(backlog, formatter,
                        _stream_writer(stream) if stream else _stderr_writer())
    _listener.start()
    _backlog = backlog
    # aiohttp's own access log would be a second, unstructured line per request.
    logging.getLogger("aiohttp.access").disabled = True
    server = logging.getLogger(SERVER_LOGGER)
    for old_filter in server.filters[:]:
        server.removeFilter(old_filter)
    server.addFilter(ProtocolErrorFilter())


def _stream_writer(stream: IO[str]) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


def _stderr_writer() -> Callable[[str], None]:
    """Straight to file descriptor 2: a write blocked on a full pipe then holds no lock of
    sys.stderr, which the interpreter flushes on its way out."""
    fd = sys.stderr.fileno()

    def write(text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(fd, data):]

    return write


@atexit.register
def stop_logging() -> None:
    """Write out the queued records (waiting LOG_STOP_SECONDS at most) and stop the writer."""
    global _listener, _backlog
    if _listener is not None:
        _backlog = None  # from now on through the logger, like any record
        _listener.stop_within(LOG_STOP_SECONDS)
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
    level = logging.WARNING if status >= 500 else logging.INFO
    if not _access_log.isEnabledFor(level):
        return
    duration_ms = round(duration * 1000, 3)
    backlog = _backlog
    if backlog is None:  # logging not set up by configure_logging: whatever handlers there are
        fields = dict(zip(REQUEST_FIELDS, (method, path, status, duration_ms, agent_id, remote),
                          strict=True))
        _access_log.log(level, "request", extra={"fields": fields})
    else:
        backlog.add_line((time.time(), logging.getLevelName(level), method, path, status,
                          duration_ms, agent_id, remote))


_access_log = logging.getLogger(ACCESS_LOGGER)
