"""Settings: an optional TOML file, overridden by SANTAMON_* environment variables.

Every setting has one name: the TOML key is the variable's name in lower case without the
prefix (`SANTAMON_DB_PATH` <-> `db_path`). A bad value stops the server with one line that
names the variable.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import socket
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    IPvAnyNetwork,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from .domain.signals import Severity

log = logging.getLogger(__name__)

ENV_PREFIX = "SANTAMON_"
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
MIN_KEY_LENGTH = 16
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


# The admin key may do everything: an agent holding it would be an admin.
_SHARED_KEY = ("is also an agent key in SANTAMON_API_KEY; every agent would be an admin, so "
               "the admin key must differ from every agent key")


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
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _shown_duration(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def _duration(low: float, high: float, *, zero_means_off: bool = False) -> Any:
    """A duration setting within [low, high] seconds (or 0, when 0 turns the feature off):
    an interval of 1e-6 s spins the scheduler, one of 1e300 s never runs, a retention of
    1e300 s points before year 1 and fails every run."""

    def within(seconds: float) -> float:
        if zero_means_off and seconds == 0:
            return seconds
        if not low <= seconds <= high:
            raise ValueError(f"must be between {_shown_duration(low)} and "
                             f"{_shown_duration(high)}" + (", or 0" if zero_means_off else ""))
        return seconds

    return Annotated[float, BeforeValidator(parse_duration), AfterValidator(within)]


DAY = 86400.0
Interval = _duration(1.0, 7 * DAY)  # how often a background job runs
# Heartbeats acknowledged but not yet written: what a crash loses and how late /agents may be.
FlushInterval = _duration(1.0, 60.0)
HistorySample = _duration(1.0, 7 * DAY, zero_means_off=True)  # 0 keeps every heartbeat
StaleAfter = _duration(1.0, 365 * DAY)
Retention = _duration(3600.0, 36500 * DAY)
RetentionOrOff = _duration(3600.0, 36500 * DAY, zero_means_off=True)


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _check_key(key: str) -> str:
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"each key must be at least {MIN_KEY_LENGTH} characters")
    return key


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Whether agents may still use a shared key (SANTAMON_API_KEY) beside the keys bound to
    # one host each (`santamon agent-keys`); `bound-only` once the whole fleet has its own.
    agent_keys: Literal["shared-or-bound", "bound-only"] = "shared-or-bound"
    api_key: Annotated[list[str], BeforeValidator(_split_list)] = Field(
        default_factory=list, validate_default=True)
    admin_key: str | None = None
    db_path: Path = Path("signals.db")
    # PostgreSQL instead of the SQLite file: postgresql://user:password@host:port/database
    database_url: str | None = None
    database_pool_size: int = Field(10, ge=1, le=1000)  # connections per process
    # Processes serving one port (SO_REUSEPORT); more than one needs PostgreSQL.
    workers: int = Field(1, ge=1, le=256)
    # How this instance is named in GET /jobs; host name and process id when unset.
    instance_name: str | None = Field(None, min_length=1, max_length=200)
    # Proxies (addresses or networks) whose X-Forwarded-For names the client; nobody else's.
    trusted_proxies: Annotated[list[IPvAnyNetwork],
                               BeforeValidator(_split_list)] = Field(default_factory=list)
    host: str = "0.0.0.0"
    port: int = Field(8443, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    # Heartbeats (santamon/store/liveness.py, santamon/domain/heartbeats.py)
    heartbeat_flush_interval: FlushInterval = 1.0
    heartbeat_sample: HistorySample = 600.0

    # Background jobs (santamon/jobs/)
    stale_after: StaleAfter = 180.0
    stale_check_interval: Interval = 30.0
    # More agents than this going stale in one check raise one alert naming them all (agents
    # in a maintenance window and silenced alerts are not counted); 0: one alert per agent,
    # however many.
    stale_summary_threshold: int = Field(10, ge=0, le=1_000_000)
    # New agent ids one key may bring per hour before further new ones are turned away (503,
    # agents retry); known agents are never limited. 0: no limit.
    new_agents_per_hour: int = Field(10_000, ge=0, le=10_000_000)
    heartbeat_retention: Retention = 7 * DAY
    signal_retention: RetentionOrOff = 90 * DAY  # resolved signals only; 0 keeps them all
    retention_interval: Interval = 3600.0
    forward_webhook_url: HttpUrl | None = None
    forward_webhook_secret: str | None = None
    forward_webhook_format: Literal["json", "slack"] = "json"
    forward_file: Path | None = None
    forward_min_severity: Severity = "info"
    forward_silenced: bool = False  # also forward signals an active silence matched
    forward_interval: Interval = 5.0

    @field_validator("api_key")
    @classmethod
    def _agent_keys_long_enough(cls, keys: list[str], info: ValidationInfo) -> list[str]:
        if not keys and info.data.get("agent_keys") != "bound-only":
            raise ValueError("is required (or set SANTAMON_AGENT_KEYS=bound-only to accept "
                             "only keys bound to a host)")
        return [_check_key(key) for key in keys]

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(POSTGRESQL_SCHEMES):
            raise ValueError("expected postgresql://user:password@host:port/database")
        return url

    @field_validator("workers")
    @classmethod
    def _workers_need_postgresql(cls, workers: int, info: ValidationInfo) -> int:
        if workers > 1 and not info.data.get("database_url"):
            raise ValueError(f"{workers} workers need PostgreSQL (SANTAMON_DATABASE_URL); "
                             "SQLite has one writer by design, so serve it with 1 worker")
        return workers

    @field_validator("admin_key")
    @classmethod
    def _admin_key_long_enough_and_not_an_agent_key(cls, key: str | None,
                                                     info: ValidationInfo) -> str | None:
        if key is None:
            return None
        if key in info.data.get("api_key", ()):
            raise ValueError(_SHARED_KEY)
        return _check_key(key)

    @property
    def admin_key_file(self) -> Path:
        return self.db_path.with_name(self.db_path.name + ".admin-key")


def instance_name(settings: Settings, worker: int | None = None) -> str:
    """This process's name in GET /jobs: the configured one (with the worker's number when
    there are several), else host name and process id, which no other process shares."""
    if settings.instance_name:
        return settings.instance_name if worker is None else (
            f"{settings.instance_name}/worker-{worker}")
    return f"{socket.gethostname()}:{os.getpid()}"


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
    """The admin key from the settings, or from (created once) a 0600 file beside the database.

    Returns the settings with the key filled in, and the file when the key came from one.
    """
    if settings.admin_key:
        return settings, None
    path = settings.admin_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_secret_file(path, secrets.token_urlsafe(32) + "\n")
    elif (mode := stat.S_IMODE(path.stat().st_mode)) & 0o077:
        log.warning("%s holds the admin key and is readable by group or others (mode %04o); "
                    "restrict it: chmod 600 %s", path, mode, path)
    key = path.read_text().strip()
    try:
        _check_key(key)
    except ValueError:
        raise ConfigError(f"{path}: the admin key in this file is shorter than "
                          f"{MIN_KEY_LENGTH} characters") from None
    if key in settings.api_key:
        raise ConfigError(f"{path}: the admin key in this file {_SHARED_KEY}")
    return settings.model_copy(update={"admin_key": key}), path


def write_secret_file(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; never widen an existing file's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
