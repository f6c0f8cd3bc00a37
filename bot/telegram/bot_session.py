"""The HTTP session of the service's Bot: aiogram's AiohttpSession, keeping its response models alive.

aiogram reads every Bot API answer with `Response[method.__returning__]`, a pydantic generic model
that pydantic keeps only weakly. The parametrized class sits in a reference cycle, so the next
garbage collection of the youngest generation drops it and the next call builds it again: about
10 ms of schema building for a `sendMessage`, measured at one rebuild every third message of a busy
bot (bench/ingest.py). Holding each model once, for the handful of return types the bot uses, ends that."""

from __future__ import annotations

from typing import Any, ClassVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import Response
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType


class BotSession(AiohttpSession):
    _models: ClassVar[dict[Any, Any]] = {}  # return type -> Response[return type], held for good

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._models:
            self._models[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
