import io
import json
import logging
import threading
import time

import pytest

from santamon import logs
from santamon.logs import configure_logging, log_request, stop_logging


@pytest.fixture
def capture():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    stop_logging()
    for h in root.handlers[:]:
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def written(capture: io.StringIO) -> str:
    stop_logging()  # the writer thread has written everything once it stops
    return capture.getvalue()


def test_text_is_one_logfmt_line_per_request(capture):
    configure_logging("text", stream=capture)
    log_request("POST", "/ingest", 200, 0.0123456, agent_id="mac-01", remote="127.0.0.1")
    log_request("GET", "/signals", 401, 0.001, remote="192.0.2.9")
    first, second = written(capture).splitlines()
    assert first.split(" ", 1)[1] == (
        "INFO santamon.access request method=POST path=/ingest status=200 "
        "duration_ms=12.346 agent_id=mac-01 remote=127.0.0.1"
    )
    assert first[:4].isdigit() and first[23] == "Z"
    assert "agent_id=- remote=192.0.2.9" in second


def test_lines_logged_after_a_pause_are_written_too(capture):
    """The log thread writes a batch, waits for more to gather, and goes on: request lines and
    other records alike, in the order they were logged."""
    configure_logging("text", stream=capture)
    log_request("GET", "/first", 200, 0.001)
    time.sleep(3 * logs.LOG_GATHER_SECONDS)
    logging.getLogger("santamon.test").warning("between")
    log_request("GET", "/second", 200, 0.001)
    time.sleep(3 * logs.LOG_GATHER_SECONDS)
    log_request("GET", "/third", 200, 0.001)
    lines = written(capture).splitlines()
    assert [line.split(" ", 4)[3] for line in lines] == ["request", "between", "request",
                                                         "request"]
    assert ["/first" in lines[0], "/second" in lines[2], "/third" in lines[3]] == [True] * 3


def test_json_lines_carry_the_same_fields(capture):
    configure_logging("json", stream=capture)
    log_request("POST", "/agents/heartbeat", 503, 0.5, agent_id="mac-02", remote="::1")
    doc = json.loads(written(capture))
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "santamon.access"
    assert doc["msg"] == "request"
    assert {k: doc[k] for k in ("method", "path", "status", "duration_ms", "agent_id")} == {
        "method": "POST",
        "path": "/agents/heartbeat",
        "status": 503,
        "duration_ms": 500.0,
        "agent_id": "mac-02",
    }
    assert doc["ts"].endswith("Z")


def test_a_hostile_path_cannot_forge_a_second_line(capture):
    configure_logging("text", stream=capture)
    log_request("GET", '/x\n2026-01-01T00:00:00Z INFO forged "a b"', 404, 0.0)
    lines = written(capture).splitlines()
    assert len(lines) == 1
    assert 'path="/x\\n2026-01-01T00:00:00Z INFO forged \\"a b\\""' in lines[0]


def test_exceptions_are_kept_in_one_json_record(capture):
    configure_logging("json", stream=capture)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("santamon.test").exception("failed")
    (line,) = written(capture).splitlines()
    assert "RuntimeError: boom" in json.loads(line)["exc"]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        configure_logging("xml")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_worker_process_says_which_worker_on_every_line(capture, fmt):
    configure_logging(fmt, stream=capture, worker=2)
    log_request("GET", "/health", 200, 0.001, remote="127.0.0.1")
    logging.getLogger("santamon").warning("a message of its own")
    lines = written(capture).splitlines()
    assert len(lines) == 2
    if fmt == "text":
        assert all(line.endswith(" worker=2") for line in lines)
    else:
        assert [json.loads(line)["worker"] for line in lines] == [2, 2]


def test_unicode_format_characters_are_escaped_in_both_formats(capture):
    """U+202E and friends reorder or hide text in a terminal: a path must not disguise a line."""
    for fmt in ("text", "json"):
        configure_logging(fmt, stream=capture)
        log_request("GET", "/x\u202etxt.exe\u2066", 404, 0.0, agent_id="mac\u200b01\u00a0")
        logging.getLogger("santamon.test").warning("agent %s", "a\u202eb")
        out = written(capture)
        for invisible in ("\u202e", "\u2066", "\u200b", "\u00a0"):
            assert invisible not in out, fmt
        assert "\\u202e" in out
        if fmt == "json":
            assert json.loads(out.splitlines()[0])["path"] == "/x\u202etxt.exe\u2066"
        capture.seek(0)
        capture.truncate()
    configure_logging("text", stream=capture)
    log_request("GET", "/caf\u00e9/\u65e5\u672c", 200, 0.0)  # printable text stays readable
    assert "path=/caf\u00e9/\u65e5\u672c " in written(capture)


class BlockedStream(io.StringIO):
    """stderr nobody reads: every write waits until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return super().write(text)


def test_a_blocked_stream_drops_records_and_never_holds_up_stop(capture, monkeypatch):
    monkeypatch.setattr(logs, "LOG_QUEUE_RECORDS", 50, raising=False)
    monkeypatch.setattr(logs, "LOG_STOP_SECONDS", 0.2, raising=False)
    stream = BlockedStream()
    try:
        configure_logging("text", stream=stream)
        for n in range(500):
            log_request("GET", f"/r/{n}", 200, 0.0)
        stopper = threading.Thread(target=stop_logging, daemon=True)
        stopper.start()
        stopper.join(5)
        assert not stopper.is_alive(), "stop_logging waited for the blocked stream"
        assert logs.dropped_records() >= 500 - 50 - 1
    finally:
        stream.release.set()


def test_records_and_request_lines_share_one_bound(capture, monkeypatch):
    """A blocked stream holds at most LOG_QUEUE_RECORDS of records and request lines together,
    not that many of each."""
    monkeypatch.setattr(logs, "LOG_QUEUE_RECORDS", 50, raising=False)
    monkeypatch.setattr(logs, "LOG_STOP_SECONDS", 0.2, raising=False)
    stream = BlockedStream()
    dropped = logs.dropped_records()
    try:
        configure_logging("text", stream=stream)
        for n in range(100):
            log_request("GET", f"/r/{n}", 200, 0.0)
            logging.getLogger("santamon.test").warning("record %d", n)
        assert logs.dropped_records() - dropped >= 200 - 50 - 1
        stop_logging()
    finally:
        stream.release.set()


def test_a_line_that_cannot_be_rendered_does_not_stop_the_log_thread(capture):
    """Request lines are rendered on the log thread: one value whose rendering fails costs
    that line only, never the thread (and with it every later line)."""

    class Unrenderable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this")

    configure_logging("text", stream=capture)
    log_request("GET", Unrenderable(), 200, 0.001)  # type: ignore[arg-type]
    time.sleep(3 * logs.LOG_GATHER_SECONDS)
    log_request("GET", "/after", 200, 0.001)
    logging.getLogger("santamon.test").warning("still here")
    lines = written(capture).splitlines()
    assert len(lines) == 2
    assert "path=/after" in lines[0] and "still here" in lines[1]
