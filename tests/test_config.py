import os
import socket
import stat

import pytest

from santamon.config import (
    ConfigError,
    ensure_admin_key,
    instance_name,
    load_settings,
    parse_duration,
)

KEY = "k" * 16


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("5m", 300), ("1.5h", 5400), ("7d", 604800), (30, 30), ("0", 0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "-1", "", "m", True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_agent_key_is_required_and_named():
    with pytest.raises(ConfigError, match=r"SANTAMON_API_KEY.*required"):
        load_settings(environ={})


def test_short_keys_are_refused_saying_16():
    with pytest.raises(ConfigError, match=r"SANTAMON_API_KEY.*16"):
        load_settings(environ={"SANTAMON_API_KEY": f"{KEY},short"})
    with pytest.raises(ConfigError, match=r"SANTAMON_ADMIN_KEY.*16"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_ADMIN_KEY": "short"})


def test_several_agent_keys_for_rotation():
    settings = load_settings(environ={"SANTAMON_API_KEY": f" {KEY} , {'r' * 20} "})
    assert settings.api_key == [KEY, "r" * 20]


def test_environment_overrides_toml(tmp_path):
    config = tmp_path / "santamon.toml"
    config.write_text(f'api_key = "{KEY}"\nport = 9000\ndb_path = "/var/x.db"\n')
    settings = load_settings(config, environ={"SANTAMON_PORT": "9443"})
    assert settings.port == 9443
    assert str(settings.db_path) == "/var/x.db"


def test_bad_values_name_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="SANTAMON_PORT"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_PORT": "http"})
    config = tmp_path / "bad.toml"
    config.write_text('api_key = "' + KEY + '"\nprot = 1\n')
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config, environ={})


def test_admin_key_generated_once_in_a_private_file(tmp_path):
    settings = load_settings(environ={"SANTAMON_API_KEY": KEY,
                                      "SANTAMON_DB_PATH": str(tmp_path / "s.db")})
    first, path = ensure_admin_key(settings)
    assert path == tmp_path / "s.db.admin-key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first.admin_key) >= 16
    again, _ = ensure_admin_key(settings)
    assert again.admin_key == first.admin_key


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "1" * 400 + "s", -0.0 - 1])
def test_durations_are_finite_and_not_negative(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(("setting", "value"), [
    ("stale_check_interval", "inf"), ("stale_check_interval", "nan"),
    ("stale_check_interval", "1e-6"), ("stale_check_interval", "1e300"),
    ("retention_interval", "0.5"), ("forward_interval", "1e-6"), ("forward_interval", "1e300"),
    ("stale_after", "0.001"), ("stale_after", "1e300"),
    ("heartbeat_retention", "60"), ("heartbeat_retention", "1e300"),
    ("signal_retention", "30"), ("signal_retention", "1e300"), ("signal_retention", "-inf"),
])
def test_toml_durations_outside_their_range_are_refused_naming_the_variable(tmp_path, setting,
                                                                             value):
    config = tmp_path / "santamon.toml"
    config.write_text(f'api_key = "{KEY}"\n{setting} = {value}\n')
    with pytest.raises(ConfigError, match=f"SANTAMON_{setting.upper()}"):
        load_settings(config, environ={})


def test_duration_ranges_keep_sensible_values(tmp_path):
    config = tmp_path / "santamon.toml"
    config.write_text(f'api_key = "{KEY}"\nstale_check_interval = 1\nforward_interval = "1s"\n'
                      'signal_retention = 0\nheartbeat_retention = "1h"\n'
                      'retention_interval = "7d"\nstale_after = "1d"\n')
    settings = load_settings(config, environ={})
    assert (settings.stale_check_interval, settings.signal_retention) == (1, 0)
    assert settings.heartbeat_retention == 3600 and settings.retention_interval == 7 * 86400


def test_the_analyst_key_cannot_also_be_an_agent_key(tmp_path):
    with pytest.raises(ConfigError, match=r"SANTAMON_ADMIN_KEY.*SANTAMON_API_KEY"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_ADMIN_KEY": KEY})
    with pytest.raises(ConfigError, match=r"SANTAMON_ADMIN_KEY.*SANTAMON_API_KEY"):
        load_settings(environ={"SANTAMON_API_KEY": f"{'r' * 20},{KEY}",
                               "SANTAMON_ADMIN_KEY": KEY})
    # The generated key file is the analyst key too.
    settings = load_settings(environ={"SANTAMON_API_KEY": KEY,
                                      "SANTAMON_DB_PATH": str(tmp_path / "s.db")})
    (tmp_path / "s.db.admin-key").write_text(KEY + "\n")
    with pytest.raises(ConfigError, match=r"s\.db\.admin-key.*SANTAMON_API_KEY"):
        ensure_admin_key(settings)


def test_an_admin_key_file_readable_by_others_is_warned_about(tmp_path, caplog):
    settings = load_settings(environ={"SANTAMON_API_KEY": KEY,
                                      "SANTAMON_DB_PATH": str(tmp_path / "s.db")})
    ensure_admin_key(settings)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    os.chmod(tmp_path / "s.db.admin-key", 0o644)
    ensure_admin_key(settings)
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "s.db.admin-key" in warning.getMessage() and "0644" in warning.getMessage()
    assert "chmod 600" in warning.getMessage()


def test_a_database_url_chooses_postgresql(tmp_path):
    from santamon.store import create_store
    from santamon.store.postgres import PostgresStore
    from santamon.store.sqlite import SQLiteStore

    settings = load_settings(environ={"SANTAMON_API_KEY": KEY,
                                      "SANTAMON_DATABASE_URL": "postgresql://u:p@db/santamon",
                                      "SANTAMON_DATABASE_POOL_SIZE": "25"})
    assert settings.database_pool_size == 25
    assert isinstance(create_store(settings), PostgresStore)
    assert isinstance(create_store(load_settings(environ={"SANTAMON_API_KEY": KEY})),
                      SQLiteStore)
    with pytest.raises(ConfigError, match=r"SANTAMON_DATABASE_URL.*postgresql://"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_DATABASE_URL": "mysql://x"})
    with pytest.raises(ConfigError, match="SANTAMON_DATABASE_POOL_SIZE"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_DATABASE_POOL_SIZE": "0"})


def test_check_config_names_the_engine_and_masks_the_database_password(monkeypatch, capsys):
    from santamon.cli import main

    for name in ("SANTAMON_TLS_CERT", "SANTAMON_TLS_KEY", "SANTAMON_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANTAMON_API_KEY", KEY)
    monkeypatch.setenv("SANTAMON_ADMIN_KEY", "a" * 20)
    monkeypatch.setenv("SANTAMON_DATABASE_URL",
                       "postgresql://santamon:hunter2-p%40ss@db.internal:5433/signals"
                       "?sslmode=require&password=other-secret")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "other-secret" not in out
    assert "postgresql://santamon:<secret: 12 chars, sha256 " in out
    assert "@db.internal:5433/signals?sslmode=require&password=<secret: 12 chars" in out
    assert "storage: PostgreSQL postgresql://santamon:<secret" in out
    assert "up to 10 connections per process" in out
    assert main(["vacuum"]) == 2  # a SQLite command
    assert "PostgreSQL" in capsys.readouterr().err


def test_an_instance_is_named_by_host_and_pid_unless_named():
    settings = load_settings(environ={"SANTAMON_API_KEY": KEY})
    assert instance_name(settings) == f"{socket.gethostname()}:{os.getpid()}"
    named = load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_INSTANCE_NAME": "eu-1"})
    assert instance_name(named) == "eu-1"
    assert instance_name(named, worker=2) == "eu-1/worker-2"


def test_workers_need_postgresql_and_trusted_proxies_are_networks():
    with pytest.raises(ConfigError, match=r"SANTAMON_WORKERS: 2 workers need PostgreSQL"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_WORKERS": "2"})
    settings = load_settings(environ={
        "SANTAMON_API_KEY": KEY, "SANTAMON_WORKERS": "4",
        "SANTAMON_DATABASE_URL": "postgresql://santamon@db/santamon",
        "SANTAMON_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7, fd00::/8"})
    assert settings.workers == 4
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.7/32",
                                                          "fd00::/8"]
    with pytest.raises(ConfigError, match="SANTAMON_TRUSTED_PROXIES"):
        load_settings(environ={"SANTAMON_API_KEY": KEY, "SANTAMON_TRUSTED_PROXIES": "proxy"})
