"""Settings: the one place that reads the environment (and `.env`)."""

from __future__ import annotations

import datetime as dt
import re
import typing
import urllib.parse
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import annotated_types
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Language = Literal["zh", "en"]
LANGUAGES: tuple[str, ...] = typing.get_args(Language)
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?")
# Telegram's token: the bot's id, a colon, 35 characters. A local Bot API server (tests, the demo)
# takes any `id:secret`, so only that looser shape is required when TELEGRAM_API_URL is set.
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]{35}")
_LOCAL_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
# Values never repeated in an error: they may hold a password or a secret.
_UNSHOWN = frozenset({"bot_token", "webhook_secret", "database_url", "redis_url", "smtp_url"})
# async driver each database needs, by the name a URL may start with
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg://", "postgres": "postgresql+asyncpg://",
                  "sqlite": "sqlite+aiosqlite://"}


class SettingsError(Exception):
    """A setting is missing, malformed or unusable. The message (one to three lines, in DEFAULT_LANGUAGE)
    names it and says what to do; `setting` is its name."""

    def __init__(self, message: str, setting: str = "") -> None:
        super().__init__(message)
        self.setting = setting


def settings_error(lang: str, setting: str, problem: str, **context: Any) -> SettingsError:
    """A SettingsError worded by templates/<lang>/cli_settings.txt, macro `problem`."""
    from bot.texts import render  # Jinja2 only once something is wrong

    return SettingsError(render(lang, f"cli_settings.{problem}", setting=setting, **context), setting)


def _parse_hhmm(value: str) -> dt.time:
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    return dt.time(int(match[1]), int(match[2] or 0))  # ValueError for 24:00, 09:60


def _clock_ok(value: str) -> bool:
    try:
        _parse_hhmm(value)
    except ValueError:
        return False
    return True


def _is_web_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- README "Configuration": the settings operators rely on ---
    bot_token: SecretStr | None = None
    bot_username: str | None = None
    database_url: str | None = None
    redis_url: str | None = None
    telegram_api_url: str | None = None
    timezone: str = "Asia/Shanghai"
    default_language: Language = "zh"
    admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    quiet_hours: str = "21:00-08:00"
    data_dir: Path = Path("data")
    log_level: LogLevel = "INFO"

    # --- webhook listener (only used when WEBHOOK_URL is set) ---
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(8080, ge=1, le=65535)

    # --- the web cockpit (README "Cockpit"); WEB_PORT 0: not served ---
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=0, le=65535)
    web_base_url: str = "http://127.0.0.1:8080"
    web_link_hours: int = Field(12, ge=1, le=744)

    # --- the monthly cycle ---
    reminder_day: int = Field(20, ge=1, le=28)
    deadline_day: int = Field(25, ge=1, le=28)
    followup_every_workdays: int = Field(2, ge=1)
    reminder_time: str = "09:30"

    # --- lights (percentage points behind the time-based plan) ---
    light_yellow_behind: int = Field(10, ge=0, le=100)
    light_red_behind: int = Field(30, ge=0, le=100)
    not_started_red_months: int = Field(3, ge=1)
    milestone_red_days: int = Field(30, ge=1)

    # --- escalation, in working days ---
    escalate_county_leader_after: int = Field(2, ge=1)
    escalate_city_after: int = Field(3, ge=1)

    # --- weekly digest ---
    digest_weekday: int = Field(0, ge=0, le=6)  # Monday = 0
    digest_time: str = "09:00"

    # --- sender pacing (Telegram's limits, with headroom) ---
    send_rate_global: float = Field(25.0, gt=0)
    send_rate_per_chat: float = Field(1.0, gt=0)
    send_rate_per_group_minute: float = Field(20.0, gt=0)
    send_max_attempts: int = Field(8, ge=1)
    # sent and dead outbox rows are deleted after these many days (README "Notifications")
    outbox_keep_sent_days: int = Field(90, ge=1)
    outbox_keep_dead_days: int = Field(365, ge=1)

    # --- chat ---
    invite_ttl_days: int = Field(7, ge=1)
    undo_minutes: int = Field(30, ge=1)
    throttle_per_minute: int = Field(30, ge=1)
    max_photo_mb: int = Field(10, ge=1)

    # --- several instances ---
    lease_seconds: int = Field(30, ge=5)

    # --- e-mail channels (README "Channels"): smtp://user:password@host:port (STARTTLS) or smtps:// (TLS) ---
    smtp_url: str | None = None
    smtp_from: str | None = None

    # --- database connections an instance keeps (README "Configuration"; bot.store.db_gate shares them out) ---
    db_pool_size: int = Field(10, ge=3, le=200)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        try:
            if isinstance(value, str):
                return tuple(int(part) for part in value.replace(";", ",").split(",") if part.strip())
        except ValueError:
            raise PydanticCustomError("id_list", "expected comma-separated Telegram ids") from None
        if isinstance(value, int):
            return (value,)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("time_zone", "unknown time zone") from None
        return value

    @field_validator("reminder_time", "digest_time")
    @classmethod
    def _valid_clock(cls, value: str) -> str:
        if not _clock_ok(value):
            raise PydanticCustomError("time_of_day", "expected HH:MM")
        return value.strip()

    @field_validator("quiet_hours")
    @classmethod
    def _valid_window(cls, value: str) -> str:
        if not value.strip():
            return ""
        start, dash, end = value.partition("-")
        if not (dash and _clock_ok(start) and _clock_ok(end)):
            raise PydanticCustomError("time_window", "expected HH:MM-HH:MM")
        return value.strip()

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _is_web_url(value.strip()):
            raise PydanticCustomError("url", "expected an http(s) URL")
        return value.strip()

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parts = urllib.parse.urlsplit(value.strip())
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise PydanticCustomError("smtp_url", "expected smtp:// or smtps://") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise PydanticCustomError("smtp_url", "expected smtp:// or smtps://")
        return value.strip()

    @field_validator("smtp_from")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None
    @field_validator("web_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not _is_web_url(value.strip()):
            raise PydanticCustomError("url", "expected an http(s) URL")
        return value.strip().rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _async_database(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value.strip())
        except (ArgumentError, ValueError):
            raise PydanticCustomError("database_not_url", "not a database URL") from None
        backend, _, driver = url.drivername.partition("+")
        wanted = _ASYNC_DRIVERS.get(backend)
        if wanted is None:
            raise PydanticCustomError("database_not_url", "not a database URL")
        if f"{backend}+{driver}://" != wanted:
            raise PydanticCustomError("database_driver", "needs an async driver",
                                      {"given": f"{url.drivername}://", "use": wanted})
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from redis.connection import parse_url  # only when Redis is used

        try:
            parse_url(value.strip())
        except ValueError:
            raise PydanticCustomError("redis_url", "not a Redis URL") from None
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.deadline_day < self.reminder_day:
            raise PydanticCustomError("day_order", "DEADLINE_DAY before REMINDER_DAY",
                                      {"setting": "DEADLINE_DAY", "other": "REMINDER_DAY"})
        if self.light_red_behind < self.light_yellow_behind:
            raise PydanticCustomError("light_order", "LIGHT_RED_BEHIND below LIGHT_YELLOW_BEHIND",
                                      {"setting": "LIGHT_RED_BEHIND", "other": "LIGHT_YELLOW_BEHIND"})
        return self

    # --- derived values ---
    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'qingshui.db').resolve()}"

    @property
    def quiet_window(self) -> tuple[dt.time, dt.time] | None:
        if not self.quiet_hours:
            return None
        start, _, end = self.quiet_hours.partition("-")
        return _parse_hhmm(start), _parse_hhmm(end or start)

    @property
    def reminder_clock(self) -> dt.time:
        return _parse_hhmm(self.reminder_time)

    @property
    def digest_clock(self) -> dt.time:
        return _parse_hhmm(self.digest_time)

    def require_token(self) -> str:
        """BOT_TOKEN, checked for Telegram's shape; SettingsError (worded for the operator) when it is
        missing or malformed."""
        token = self.bot_token.get_secret_value().strip() if self.bot_token is not None else ""
        if not token:
            raise settings_error(self.default_language, "BOT_TOKEN", "token_missing")
        if not (_LOCAL_TOKEN if self.telegram_api_url else _TOKEN).fullmatch(token):
            raise settings_error(self.default_language, "BOT_TOKEN", "token_malformed")
        return token


class CommandLineBasics(BaseSettings):
    """What the command line needs even when other settings are wrong: the language of its words and
    the log level. Lenient on purpose: a bad value falls back to the default (Settings reports it)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")
    default_language: str = "zh"
    log_level: str = "INFO"

    @property
    def language(self) -> str:
        lang = self.default_language.strip().lower()
        return lang if lang in LANGUAGES else "zh"

    @property
    def level(self) -> str:
        level = self.log_level.strip().upper()
        return level if level in typing.get_args(LogLevel) else "INFO"

    @property
    def debug(self) -> bool:
        return self.level == "DEBUG"


def command_line_basics() -> CommandLineBasics:
    try:
        return CommandLineBasics()
    except (ValidationError, OSError, UnicodeDecodeError):  # an unreadable .env: Settings reports it
        return CommandLineBasics(_env_file=None)  # type: ignore[call-arg]


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report of the first bad one into a SettingsError in
    DEFAULT_LANGUAGE (or Chinese when that is the bad one) that names it and says what to do."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _explain(exc.errors()[0], command_line_basics().language) from exc


# pydantic's error type -> the macro of cli_settings that words it
_PROBLEMS = {
    "int_parsing": "integer", "int_from_float": "integer", "int_type": "integer",
    "float_parsing": "number", "float_type": "number", "bool_parsing": "boolean", "bool_type": "boolean",
    "literal_error": "choice", "enum": "choice",
    "greater_than_equal": "range", "less_than_equal": "range", "greater_than": "above", "less_than": "range",
}
_CUSTOM = ("id_list", "time_zone", "time_of_day", "time_window", "url", "database_not_url", "database_driver",
           "redis_url", "smtp_url", "day_order", "light_order")
_VALUELESS = ("database_not_url", "database_driver", "redis_url", "smtp_url", "day_order", "light_order")


def _explain(error: Any, lang: str) -> SettingsError:
    field = str(error["loc"][0]) if error["loc"] else ""
    ctx = dict(error.get("ctx") or {})
    setting = str(ctx.pop("setting", field.upper() or "settings"))
    raw = error.get("input")
    value = str(raw) if field not in _UNSHOWN and isinstance(raw, str | int | float) else None
    kind = error["type"]
    problem = kind if kind in _CUSTOM else _PROBLEMS.get(kind, "invalid")
    info = Settings.model_fields.get(field)
    if problem == "choice" and info is not None:
        ctx["choices"] = list(typing.get_args(info.annotation))
    if problem in ("range", "above"):
        bounds = info.metadata if info is not None else []
        ctx["low"] = next((m.ge if isinstance(m, annotated_types.Ge) else m.gt for m in bounds
                           if isinstance(m, annotated_types.Ge | annotated_types.Gt)), None)
        ctx["high"] = next((m.le for m in bounds if isinstance(m, annotated_types.Le)), None)
        if problem == "above":
            ctx.pop("high")
    for pydantic_only in ("ge", "le", "gt", "lt", "expected", "error"):
        ctx.pop(pydantic_only, None)
    if problem not in _VALUELESS:
        ctx["value"] = value
    return settings_error(lang, setting, problem, **ctx)
