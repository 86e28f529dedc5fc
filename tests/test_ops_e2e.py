"""Operations against a real `santamon serve`: SIGTERM under load, TLS, JSON logs, the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sqlite3
import ssl
import subprocess
import sys

import aiohttp
import pytest

from santamon.cli import main

from .helpers import AGENT_KEY, ANALYST, ANALYST_KEY, AgentFleet, ServerProcess


async def test_sigterm_during_ingest_finishes_in_flight_work_and_exits_0(tmp_path):
    proc = ServerProcess(tmp_path / "term.db", env={"SANTAMON_LOG_FORMAT": "json"}).start()
    fleet = AgentFleet(proc.url, "term", target=300)

    async def terminate() -> int:
        await fleet.enough.wait()
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(proc.proc.wait, 30)

    try:
        results = await asyncio.wait_for(
            asyncio.gather(terminate(), fleet.run(12, 5_000)), 60)
    finally:
        proc.kill()
    assert results[0] == 0, proc.log()
    # Those answered 503 during shutdown were not acknowledged: the agent retries them.
    assert all(status == 503 for status in fleet.server_errors)
    with sqlite3.connect(tmp_path / "term.db") as conn:
        stored = {row[0] for row in conn.execute("SELECT signal_id FROM signals")}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    missing = set(fleet.acknowledged) - stored
    assert not missing, f"{len(missing)} of {len(fleet.acknowledged)} acknowledged signals lost"

    lines = proc.log().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    requests = [r for r in records if r["logger"] == "santamon.access"]
    assert len(requests) >= len(fleet.acknowledged)
    assert {r["agent_id"] for r in requests if r["path"] == "/ingest"} == {"mbp-alice"}
    assert AGENT_KEY not in proc.log() and ANALYST_KEY not in proc.log()


async def test_tls_serving_with_a_generated_certificate_sends_hsts(tmp_path, capsys):
    assert main(["gen-cert", "--out-dir", str(tmp_path / "tls"), "--host", "santamon.test"]) == 0
    printed = capsys.readouterr().out
    client_ctx = ssl.create_default_context(cafile=tmp_path / "tls" / "cert.pem")
    proc = ServerProcess(tmp_path / "tls.db", ssl_context=client_ctx, env={
        "SANTAMON_TLS_CERT": str(tmp_path / "tls" / "cert.pem"),
        "SANTAMON_TLS_KEY": str(tmp_path / "tls" / "key.pem"),
    })
    proc.url = proc.url.replace("127.0.0.1", "localhost")
    proc.start()
    try:
        async with aiohttp.ClientSession(proc.url) as http:
            for path, headers in (("/health", {}), ("/signals", ANALYST), ("/signals", {}),
                                  ("/static/docs/docs.css", {})):
                async with http.get(path, headers=headers, ssl=client_ctx) as response:
                    assert response.status in (200, 401)
                    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        # The fingerprint gen-cert printed is the one the server presents.
        pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", proc.port))
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()
        assert ":".join(f"{b:02X}" for b in digest) in printed
    finally:
        assert proc.stop() == 0


def test_check_config_validates_and_masks_secrets(tmp_path, monkeypatch, capsys):
    config = tmp_path / "santamon.toml"
    hook = "https://hooks.slack.com/services/T000/B000/XXXXsecretpath"
    config.write_text(f'api_key = ["{AGENT_KEY}"]\nport = 9443\n'
                      f'forward_webhook_url = "{hook}"\n'
                      'forward_webhook_secret = "hmac-secret-value"\n')
    for name in ("SANTAMON_API_KEY", "SANTAMON_ADMIN_KEY", "SANTAMON_PORT", "SANTAMON_TLS_CERT",
                 "SANTAMON_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANTAMON_ADMIN_KEY", ANALYST_KEY)
    monkeypatch.setenv("SANTAMON_DB_PATH", str(tmp_path / "x.db"))
    monkeypatch.chdir(tmp_path)

    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    for secret in (AGENT_KEY, ANALYST_KEY, "XXXXsecretpath", "T000", "hmac-secret-value"):
        assert secret not in out
    lines = {line.split("=", 1)[0].strip(): line for line in out.splitlines() if " = " in line}
    assert "<secret: 26 chars, sha256 " in lines["api_key"] and "config file" in lines["api_key"]
    assert "environment SANTAMON_ADMIN_KEY" in lines["admin_key"]
    assert "9443" in lines["port"] and "config file" in lines["port"]
    assert "default" in lines["host"]
    assert '"https://hooks.slack.com/<secret: ' in lines["forward_webhook_url"]
    assert "<secret: 17 chars" in lines["forward_webhook_secret"]
    assert not (tmp_path / "x.db.admin-key").exists()

    monkeypatch.setenv("SANTAMON_PORT", "eighty")
    assert main(["check-config", "--config", str(config)]) == 2
    assert "SANTAMON_PORT" in capsys.readouterr().err


def test_check_config_refuses_a_certificate_it_cannot_load(tmp_path, monkeypatch, capsys):
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    monkeypatch.setenv("SANTAMON_API_KEY", AGENT_KEY)
    monkeypatch.setenv("SANTAMON_TLS_CERT", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("SANTAMON_TLS_KEY", str(tmp_path / "key.pem"))
    assert main(["check-config"]) == 2
    assert "SANTAMON_TLS_CERT" in capsys.readouterr().err


def test_gen_cert_refuses_to_overwrite_and_rejects_bad_names(tmp_path, capsys):
    assert main(["gen-cert", "--out-dir", str(tmp_path)]) == 0
    assert main(["gen-cert", "--out-dir", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["gen-cert", "--out-dir", str(tmp_path), "--force", "--host", "no spaces"]) == 2
    result = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout",
                             "-ext", "subjectAltName"], capture_output=True, text=True)
    if result.returncode == 0:  # openssl is optional here; cryptography already checked it
        assert "DNS:localhost" in result.stdout and "IP Address:127.0.0.1" in result.stdout


pytestmark = pytest.mark.e2e


def _serve_until_exit(db_path, *, env=None, config=None, timeout=30.0):
    """`santamon serve` expected to fail at start: its exit code and stderr, or a test failure
    if it is still running after `timeout` (subprocess.run kills it by its PID then)."""
    server = ServerProcess(db_path, env=env)
    command = [sys.executable, "-m", "santamon", "serve", *(["--config", config] if config else [])]
    try:
        result = subprocess.run(command, env=server.env, cwd=server.cwd, capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"a failed start still ran after {timeout}s:\n{exc.stderr}") from None
    return result.returncode, result.stderr


def _seeded_database(path, *, signals=200):
    with sqlite3.connect(path) as conn:
        conn.executescript("PRAGMA journal_mode = DELETE; CREATE TABLE signals (signal_id TEXT "
                           "PRIMARY KEY, ts TEXT, host_id TEXT, rule_id TEXT, severity TEXT, "
                           "title TEXT, tags TEXT, context TEXT, received_at TEXT, status TEXT, "
                           "rule_description TEXT);")
        conn.executemany("INSERT INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?)", [
            (f"s{n}", "2026-01-01T00:00:00Z", "h", "R", "low", "t" * 200, "[]", "{}",
             "2026-01-01T00:00:00", "open", None) for n in range(signals)])


def _random_file(path):
    path.write_bytes(bytes(range(256)) * 64)


def _truncated_database(path):
    _seeded_database(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _newer_schema(path):
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")


def _a_directory(path):
    path.mkdir()


@pytest.mark.parametrize(("make", "cause"), [
    (_random_file, "file is not a database"),
    (_truncated_database, "malformed"),
    (_newer_schema, "newer than this server"),
    (_a_directory, "unable to open database file"),
])
def test_a_failed_start_exits_non_zero_with_one_line_naming_the_cause(tmp_path, make, cause):
    db = tmp_path / "broken.db"
    make(db)
    code, stderr = _serve_until_exit(db)
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    (line,) = [line for line in stderr.splitlines() if "cannot start" in line]
    assert cause in line and str(db) in line, stderr



def test_an_infinite_interval_in_the_toml_file_stops_the_start(tmp_path):
    config = tmp_path / "santamon.toml"
    config.write_text("stale_check_interval = inf\n")
    code, stderr = _serve_until_exit(tmp_path / "s.db", config=str(config))
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert "SANTAMON_STALE_CHECK_INTERVAL" in stderr.strip().splitlines()[-1], stderr


def test_check_config_refuses_an_interval_of_a_microsecond(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SANTAMON_API_KEY", AGENT_KEY)
    monkeypatch.setenv("SANTAMON_FORWARD_INTERVAL", "0.000001")
    assert main(["check-config"]) == 2
    assert "SANTAMON_FORWARD_INTERVAL: must be between 1s and 7d" in capsys.readouterr().err


def test_the_same_key_for_agents_and_the_analyst_stops_the_start(tmp_path):
    code, stderr = _serve_until_exit(tmp_path / "s.db", env={
        "SANTAMON_API_KEY": f"{AGENT_KEY},{ANALYST_KEY}", "SANTAMON_ADMIN_KEY": ANALYST_KEY})
    assert code == 2, stderr
    (line,) = stderr.strip().splitlines()
    assert "SANTAMON_ADMIN_KEY" in line and "SANTAMON_API_KEY" in line


@pytest.mark.parametrize("present", ["cert.pem", "key.pem"])
def test_half_a_certificate_pair_in_the_working_directory_stops_the_start(tmp_path, present):
    (tmp_path / present).write_text("-----BEGIN-----\n")
    code, stderr = _serve_until_exit(tmp_path / "s.db")
    assert code == 2, stderr
    (line,) = stderr.strip().splitlines()
    missing = "key.pem" if present == "cert.pem" else "cert.pem"
    assert present in line and missing in line, line


def test_check_config_never_prints_the_webhook_urls_credentials(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SANTAMON_API_KEY", AGENT_KEY)
    monkeypatch.setenv("SANTAMON_ADMIN_KEY", ANALYST_KEY)
    monkeypatch.setenv("SANTAMON_DB_PATH", str(tmp_path / "x.db"))
    for url in ("https://hookuser:hookpass@siem.example:8088/ingest?token=tok3n",
                "https://hookuser:hookpass@siem.example"):
        monkeypatch.setenv("SANTAMON_FORWARD_WEBHOOK_URL", url)
        assert main(["check-config"]) == 0
        out = capsys.readouterr().out
        for secret in ("hookuser", "hookpass", "tok3n", "/ingest"):
            assert secret not in out, out
        line = next(line for line in out.splitlines() if line.startswith("forward_webhook_url"))
        assert '"https://siem.example:8088/<secret: ' in line or \
               '"https://siem.example/<secret: ' in line, line
