"""Settings: the one place that reads the environment (and `.env`)."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Language = Literal["zh", "en"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it in one line."""


def _parse_hhmm(value: str) -> dt.time:
    hours, _, minutes = value.strip().partition(":")
    return dt.time(int(hours), int(minutes or 0))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- the contract in DESIGN.md ---
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

    # --- webhook listener (only used when WEBHOOK_URL is set) ---
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(8080, ge=1, le=65535)

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

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(";", ",").split(",") if part.strip())
        if isinstance(value, int):
            return (value,)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("quiet_hours", "reminder_time", "digest_time")
    @classmethod
    def _valid_times(cls, value: str) -> str:
        if not value.strip():
            return ""
        parts = value.split("-")
        try:
            for part in parts:
                _parse_hhmm(part)
        except ValueError as exc:
            raise ValueError(f"expected HH:MM or HH:MM-HH:MM, got {value!r}") from exc
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.deadline_day < self.reminder_day:
            raise ValueError("DEADLINE_DAY must not be before REMINDER_DAY")
        if self.light_red_behind < self.light_yellow_behind:
            raise ValueError("LIGHT_RED_BEHIND must not be below LIGHT_YELLOW_BEHIND")
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
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise SettingsError(
                "BOT_TOKEN is not set: create a bot with @BotFather in Telegram and put its token "
                "in .env as BOT_TOKEN=... (or run `qingshui demo` to try it offline)"
            )
        return self.bot_token.get_secret_value().strip()


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper() or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raw = first.get("input")
        shown = f" (got {raw!r})" if isinstance(raw, str | int | float) else ""
        raise SettingsError(f"{name}: {message}{shown}") from None
