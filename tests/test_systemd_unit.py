import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "config" / "santamon.service"


def _directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out[key].append(value)
    return out


def test_unit_runs_the_server_as_a_dedicated_user_with_hardening():
    d = _directives()
    assert d["ExecStart"][0].endswith("santamon serve --config /etc/santamon/santamon.toml")
    assert d["User"] == ["santamon"] and d["Group"] == ["santamon"]
    assert d["StateDirectory"] == ["santamon"]
    assert d["Environment"] == ["SANTAMON_DB_PATH=/var/lib/santamon/signals.db"]
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "RestrictSUIDSGID": "yes",
        "UMask": "0077",
        "KillSignal": "SIGTERM",
    }.items():
        assert d[key] == [value], key
    assert d["CapabilityBoundingSet"] == [""]
    assert 10 <= int(d["TimeoutStopSec"][0]) <= 90


def _bytes(size: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def test_unit_caps_memory_so_a_leak_or_flood_restarts_the_service_not_the_host():
    d = _directives()
    (memory_max,) = d["MemoryMax"]
    # Room for the SQLite caches and a full batch per agent (~200 MB under load, see README).
    assert 512 * 1024**2 <= _bytes(memory_max) <= 4 * 1024**3
    (memory_high,) = d["MemoryHigh"]
    assert _bytes(memory_high) < _bytes(memory_max)
    assert d["Restart"] == ["on-failure"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path):
    # verify checks that the executable exists, so point it at one that does.
    text = UNIT.read_text().replace("/opt/santamon/venv/bin/santamon", shutil.which("true"))
    (tmp_path / "santamon.service").write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "./santamon.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "santamon.service" not in result.stderr, result.stderr
