"""Helpers for tests that send: a settable clock and a Bot talking to the fake Bot API."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.demo.fake_telegram import FakeTelegram

TOKEN = "123456:TEST"


class Clock:
    """The time the code under test sees; tests move it by hand (no real waiting)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@asynccontextmanager
async def fake_bot(fake: FakeTelegram | None = None) -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    """A started FakeTelegram and an aiogram Bot pointed at it."""
    fake = fake or FakeTelegram(token=TOKEN)
    async with fake:
        session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
        bot = Bot(TOKEN, session=session)
        try:
            yield fake, bot
        finally:
            await bot.session.close()
