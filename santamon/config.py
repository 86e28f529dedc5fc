"""Settings: an optional TOML file, overridden by SANTAMON_* environment variables.

Every setting has one name: the TOML key is the variable's name in lower case without the
prefix (`SANTAMON_DB_PATH` <-> `db_path`). A bad value stops the server with one line that
names the variable.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
)

from .domain.signals import Severity

ENV_PREFIX = "SANTAMON_"
MIN_KEY_LENGTH = 16
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `5m`, `1.5h` or `7d`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None:
            raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _split_keys(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _check_key(key: str) -> str:
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"each key must be at least {MIN_KEY_LENGTH} characters")
    return key


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: Annotated[list[str], BeforeValidator(_split_keys)] = Field(min_length=1)
    admin_key: str | None = None
    db_path: Path = Path("signals.db")
    host: str = "0.0.0.0"
    port: int = Field(8443, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    # Heartbeats (santamon/store/liveness.py, santamon/domain/heartbeats.py)
    heartbeat_flush_interval: Duration = Field(1.0, gt=0, le=60)
    heartbeat_sample: Duration = Field(600.0, ge=0)  # 0 keeps every heartbeat

    # Background jobs (santamon/jobs/)
    stale_after: Duration = Field(180.0, gt=0)
    stale_check_interval: Duration = Field(30.0, gt=0)
    heartbeat_retention: Duration = Field(7 * 86400.0, gt=0)
    signal_retention: Duration = 90 * 86400.0  # resolved signals only; 0 keeps them all
    retention_interval: Duration = Field(3600.0, gt=0)
    forward_webhook_url: HttpUrl | None = None
    forward_webhook_secret: str | None = None
    forward_webhook_format: Literal["json", "slack"] = "json"
    forward_file: Path | None = None
    forward_min_severity: Severity = "info"
    forward_interval: Duration = Field(5.0, gt=0)

    @field_validator("api_key")
    @classmethod
    def _agent_keys_long_enough(cls, keys: list[str]) -> list[str]:
        return [_check_key(key) for key in keys]

    @field_validator("admin_key")
    @classmethod
    def _admin_key_long_enough(cls, key: str | None) -> str | None:
        return None if key is None else _check_key(key)

    @property
    def admin_key_file(self) -> Path:
        return self.db_path.with_name(self.db_path.name + ".admin-key")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_settings(config_path: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_path is not None:
        try:
            with open(config_path, "rb") as handle:
                values.update(tomllib.load(handle))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc}") from None
    for field in Settings.model_fields:
        if (raw := environ.get(env_name(field))) is not None:
            values[field] = raw
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    field = str(error["loc"][0]) if error["loc"] else "config"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        return f"unknown setting {field!r} in the config file"
    return f"{env_name(field)}: {message}"


def ensure_admin_key(settings: Settings) -> tuple[Settings, Path | None]:
    """The analyst key from the settings, or from (created once) a 0600 file beside the database.

    Returns the settings with the key filled in, and the file when the key came from one.
    """
    if settings.admin_key:
        return settings, None
    path = settings.admin_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_secret_file(path, secrets.token_urlsafe(32) + "\n")
    key = path.read_text().strip()
    try:
        _check_key(key)
    except ValueError:
        raise ConfigError(f"{path}: the analyst key in this file is shorter than "
                          f"{MIN_KEY_LENGTH} characters") from None
    return settings.model_copy(update={"admin_key": key}), path


def write_secret_file(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; never widen an existing file's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
