import os
import stat

import pytest

from santamon.config import ConfigError, ensure_admin_key, load_settings, parse_duration

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
