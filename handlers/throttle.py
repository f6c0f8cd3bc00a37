"""Flood control: more than THROTTLE_PER_MINUTE updates from one person in a minute get one polite
warning, then silence until the window has room again. Kept in memory, per instance: it protects
this process, and nothing is written for an update that is dropped."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import TelegramObject, User

from bot.texts import Texts
from handlers.common import lang_for

log = logging.getLogger(__name__)
WINDOW = 60.0


class Throttle(BaseMiddleware):
    def __init__(
        self, per_minute: int, texts: Texts, default_language: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.texts = texts
        self.default_language = default_language
        self.clock = clock
        self._hits: dict[int, deque[float]] = {}
        self._quiet_until: dict[int, float] = {}  # warned already: silent until then

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        now = self.clock()
        hits = self._hits.setdefault(user.id, deque())
        while hits and hits[0] <= now - WINDOW:
            hits.popleft()
        if len(hits) < self.per_minute:
            hits.append(now)
            self._forget_idle(now)
            return await handler(event, data)
        if self._quiet_until.get(user.id, 0.0) <= now:
            self._quiet_until[user.id] = hits[0] + WINDOW
            log.info("throttling user %s: %d updates in a minute", user.id, len(hits))
            await self._warn(data, user)
        return None

    async def _warn(self, data: dict[str, Any], user: User) -> None:
        bot: Bot | None = data.get("bot")
        chat = data.get("event_chat")
        if bot is None:
            return
        lang = lang_for(user.language_code, self.default_language)
        with suppress(TelegramAPIError):
            await bot.send_message(chat.id if chat else user.id, self.texts(lang, "help.throttled"))

    def _forget_idle(self, now: float) -> None:
        # keep the tables from growing with every user ever seen
        if len(self._hits) > 1000:
            for uid in [u for u, h in self._hits.items() if not h or h[-1] <= now - WINDOW]:
                self._hits.pop(uid, None)
                self._quiet_until.pop(uid, None)
