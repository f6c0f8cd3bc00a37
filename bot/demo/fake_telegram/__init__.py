"""Fake Telegram Bot API server for end-to-end tests, benchmarks and the offline demo."""

from bot.demo.fake_telegram.api import (
    BOT_ID,
    BOT_USER,
    ApiError,
    FakeChat,
    RateLimits,
    Rejection,
    SentRecord,
)
from bot.demo.fake_telegram.html_check import (
    Entity,
    HtmlParseError,
    check_html,
    html_to_text,
    parse_html,
    utf16_len,
)
from bot.demo.fake_telegram.server import FakeTelegram

__all__ = [
    "BOT_ID",
    "BOT_USER",
    "ApiError",
    "Entity",
    "FakeChat",
    "FakeTelegram",
    "HtmlParseError",
    "RateLimits",
    "Rejection",
    "SentRecord",
    "check_html",
    "html_to_text",
    "parse_html",
    "utf16_len",
]
