"""Reaching Telegram when the service starts, however long that takes.

Where Telegram is blocked, or TELEGRAM_API_URL points at the wrong place, the first calls of `run`
(getMe, the command menu, deleteWebhook or setWebhook) fail. The service does not die of it: it says
so once, in DEFAULT_LANGUAGE, keeps the outbox sender and the jobs running, and tries again after 1,
2, 4 … seconds (at most a minute apart) until Telegram answers; then it says once that it is
connected and starts taking updates. Setting the stop event (SIGTERM) ends the waiting at once.
A token Telegram refuses is a setting to fix, not a network problem: SettingsError."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from bot.config import Settings, settings_error
from bot.texts import render

log = logging.getLogger(__name__)
FIRST_DELAY = 1.0
MAX_DELAY = 60.0
TELEGRAM = "https://api.telegram.org"
# Telegram not answering, or something that is not the Bot API answering (a wrong TELEGRAM_API_URL)
UNREACHABLE = (TelegramNetworkError, TelegramServerError, TelegramNotFound, ClientDecodeError, OSError, TimeoutError)


def delays(first: float, cap: float) -> Callable[[], float]:
    """1, 2, 4 … seconds, then `cap` for good."""
    current = first / 2

    def next_delay() -> float:
        nonlocal current
        current = min(current * 2, cap)
        return current

    return next_delay


async def until_telegram_answers(
    settings: Settings, attempt: Callable[[], Awaitable[object]], stop: asyncio.Event
) -> bool:
    """Run `attempt` until it succeeds (True) or `stop` is set first (False)."""
    lang, where = settings.default_language, settings.telegram_api_url or TELEGRAM
    next_delay, failed = delays(FIRST_DELAY, MAX_DELAY), False
    while not stop.is_set():
        call = asyncio.ensure_future(attempt())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({call, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not call.done():
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
            return False
        try:
            call.result()
        except TelegramUnauthorizedError as exc:
            raise settings_error(lang, "BOT_TOKEN", "token_rejected") from exc
        except TelegramRetryAfter as exc:
            wait = float(exc.retry_after)
        except UNREACHABLE as exc:
            wait = next_delay()
            if not failed:
                log.warning(render(lang, "cli_service.telegram_unreachable", where=where, reason=_reason(exc)))
            log.debug("Telegram did not answer (%r); next try in %.0f s", exc, wait)
            failed = True
        else:
            log.log(logging.WARNING if failed else logging.INFO, render(lang, "cli_service.telegram_connected",
                                                                          where=where))
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
