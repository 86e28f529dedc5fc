"""End to end: a real `santamon serve` process, the agent's own payloads, and kill -9."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import urllib.request

import aiohttp
import pytest

from .helpers import (
    AGENT,
    AGENT_KEY,
    AGENT_KEY_2,
    ANALYST,
    REPO,
    AgentFleet,
    ServerProcess,
    sample_bytes,
)

pytestmark = pytest.mark.e2e

AGENT_HEADERS = {**AGENT, "Content-Type": "application/json",
                 "User-Agent": "github.com/0x4d31/santamon/v0.3.1"}


async def test_agent_samples_through_a_real_server(server):
    async with aiohttp.ClientSession(server.url) as http:
        for name in ("signal-file-access", "signal-null-tags", "signal-correlation"):
            async with http.post("/ingest", data=sample_bytes(name),
                                 headers=AGENT_HEADERS) as response:
                assert response.status == 200
        for name in ("heartbeat", "heartbeat-no-uptime"):
            async with http.post("/agents/heartbeat", data=sample_bytes(name),
                                 headers={**AGENT_HEADERS, "X-API-Key": AGENT_KEY_2}) as response:
                assert response.status == 200
        async with http.get("/signals", headers=ANALYST) as response:
            assert (await response.json())["count"] == 3
        async with http.get("/agents", headers=ANALYST) as response:
            assert (await response.json())["count"] == 2


async def test_kill_9_loses_no_acknowledged_signal(tmp_path):
    """Concurrent ingest, SIGKILL mid-stream, restart: every 200 is in the database."""
    proc = ServerProcess(tmp_path / "crash.db").start()
    fleet = AgentFleet(proc.url, "w", target=400)

    async def killer() -> None:
        await fleet.enough.wait()
        proc.kill()
        fleet.stop.set()

    await asyncio.wait_for(asyncio.gather(killer(), fleet.run(16, 10_000)), 60)
    acknowledged = fleet.acknowledged
    assert len(acknowledged) >= 400
    restarted = ServerProcess(tmp_path / "crash.db")
    restarted.start()
    try:
        with sqlite3.connect(tmp_path / "crash.db") as conn:
            stored = {row[0] for row in conn.execute("SELECT signal_id FROM signals")}
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged signals lost"
        async with aiohttp.ClientSession(restarted.url) as http, \
                http.get(f"/signals/{acknowledged[-1]}", headers=ANALYST) as response:
            assert response.status == 200
    finally:
        restarted.kill()


def run_cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SANTAMON_")}
    return subprocess.run([sys.executable, "-m", "santamon", *args], env={**clean, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=30)


def test_refuses_to_start_without_an_agent_key(tmp_path):
    result = run_cli("serve", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SANTAMON_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_refuses_a_short_key_saying_16(tmp_path):
    result = run_cli("serve", env={"SANTAMON_API_KEY": "tooshort"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "SANTAMON_API_KEY" in result.stderr and "16" in result.stderr


def test_bad_port_is_one_clear_line(tmp_path):
    result = run_cli("serve", env={"SANTAMON_API_KEY": AGENT_KEY, "SANTAMON_PORT": "eighty"},
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "SANTAMON_PORT" in result.stderr


def test_generated_admin_key_is_private_and_never_logged(tmp_path):
    proc = ServerProcess(tmp_path / "db" / "signals.db")
    del proc.env["SANTAMON_ADMIN_KEY"]
    proc.start()
    try:
        key_file = tmp_path / "db" / "signals.db.admin-key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert str(key_file) in proc.log()
        assert key not in proc.log()
        request = urllib.request.Request(proc.url + "/stats",
                                         headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    finally:
        proc.kill()


def test_sigterm_exits_cleanly(server):
    assert server.stop() == 0


def test_dev_keys_file(tmp_path):
    first = run_cli("dev-keys", "keys.env", env={}, cwd=tmp_path)
    assert first.returncode == 0 and "Generated" in first.stdout
    keys = (tmp_path / "keys.env").read_text()
    assert stat.S_IMODE((tmp_path / "keys.env").stat().st_mode) == 0o600
    assert "SANTAMON_API_KEY=" in keys and "SANTAMON_ADMIN_KEY=" in keys
    again = run_cli("dev-keys", "keys.env", env={}, cwd=tmp_path)
    assert (tmp_path / "keys.env").read_text() == keys and "Using" in again.stdout
    assert "curl" in again.stdout


def test_python_dash_m_and_console_script_agree():
    script = REPO / ".venv" / "bin" / "santamon"
    if not script.exists():
        pytest.skip("console script not installed in .venv")
    out = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("santamon ")
