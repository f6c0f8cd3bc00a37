"""The bot's own answers obey Telegram's limits the way the outbox sender does, so none is dropped.

A middleware on the Bot's HTTP session (aiogram has no retry of its own). For every call that puts
something in a chat (a message, a photo, an edit, a deletion) while an update is being handled:
- the update first lets go of the database (bot.store.db_gate.away_from_database): waiting for Telegram
  never holds a connection or a database slot;
- it waits for a slot of the process's Pacer, the same one the sender uses, so answers and queued
  notifications together stay under about SEND_RATE_GLOBAL a second and one message a second per chat;
  answers go before notifications, and a person's first answer before the next answers of others;
- a 429 pauses that chat (or everything, when nothing was sent there lately) for `retry_after` and
  the call is made again, for up to PATIENCE_SECONDS in all;
- a 5xx or a network error is tried again after a short backoff, at most NETWORK_TRIES times (at worst an
  answer arrives twice, as with the sender; Telegram has no idempotency key).
What still fails reaches the handler, and the error handler asks the person to send again.

Button answers (answerCallbackQuery) are not paced (they are not chat messages, and a late answer is
refused by Telegram) but get the same retries. The sender's own calls are paced by the sender: it marks
them with `paced_by_caller()` and they pass straight through."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    DeleteMessage,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    ForwardMessage,
    Response,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType

from bot.store.db_gate import away_from_database
from bot.telegram.pacing import Pacer

log = logging.getLogger(__name__)

CHAT_METHODS = (SendMessage, SendPhoto, SendDocument, SendMediaGroup, CopyMessage, ForwardMessage,
                EditMessageText, EditMessageCaption, EditMessageMedia, EditMessageReplyMarkup, DeleteMessage)
PATIENCE_SECONDS = 120.0  # longer than any 429 a busy bot meets; then the person is asked to resend
NETWORK_TRIES = 3
NETWORK_BACKOFF_SECONDS = 1.0  # then doubling

_PACED_BY_CALLER: ContextVar[bool] = ContextVar("qingshui_paced_by_caller", default=False)


@contextmanager
def paced_by_caller() -> Iterator[None]:
    """Calls made inside are paced and retried by the caller (the outbox sender)."""
    token = _PACED_BY_CALLER.set(True)
    try:
        yield
    finally:
        _PACED_BY_CALLER.reset(token)


class PacedAnswers(BaseRequestMiddleware):
    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.stats: Counter[str] = Counter()  # "retry_after", "retried_network": for logs and benchmarks

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if _PACED_BY_CALLER.get():
            return await make_request(bot, method)
        chat_id = getattr(method, "chat_id", None)
        paced = isinstance(method, CHAT_METHODS) and isinstance(chat_id, int)
        if not paced and not isinstance(method, AnswerCallbackQuery):
            return await make_request(bot, method)
        async with away_from_database():
            return await self._with_retries(make_request, bot, method, chat_id if paced else None)

    async def _with_retries(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
        chat_id: int | None,
    ) -> Response[TelegramType]:
        deadline = time.monotonic() + PATIENCE_SECONDS
        network_failures = 0
        while True:
            try:
                return await self._once(make_request, bot, method, chat_id)
            except TelegramRetryAfter as exc:
                self.stats["retry_after"] += 1
                if time.monotonic() + exc.retry_after > deadline:
                    raise
                log.warning("429 on an answer to chat %s: sending again in %s s", chat_id, exc.retry_after)
                if chat_id is None:
                    await asyncio.sleep(exc.retry_after)
                # a paced call waits out the pause in its next slot
            except (TelegramServerError, TelegramNetworkError) as exc:
                network_failures += 1
                if network_failures >= NETWORK_TRIES or time.monotonic() > deadline:
                    raise
                self.stats["retried_network"] += 1
                log.warning("answer to chat %s failed (%r): trying again", chat_id, exc)
                await asyncio.sleep(NETWORK_BACKOFF_SECONDS * 2 ** (network_failures - 1))

    async def _once(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
        chat_id: int | None,
    ) -> Response[TelegramType]:
        if chat_id is None:
            return await make_request(bot, method)
        async with self.pacer.slot(chat_id, self.pacer.answer_priority(chat_id)):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                # inside the slot, as the sender does: our own per-chat pace cannot have tripped if
                # nothing else went to this chat lately, so then it is the overall limit
                scope = chat_id if self.pacer.recently_sent_to(chat_id) else None
                self.pacer.pause(exc.retry_after, scope)
                raise
