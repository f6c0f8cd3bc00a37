"""One AsyncSession per update, injected as `session` (outer middleware on dp.update), opened once the
update has its turn at the database (bot.store.db_gate): a burst of updates waits in order instead of
exhausting the connection pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db_gate import DbGate


class SessionMiddleware(BaseMiddleware):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], gate: DbGate) -> None:
        self.sessionmaker = sessionmaker
        self.gate = gate

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        session = self.sessionmaker()
        async with self.gate.held(session), session:  # closed (its connection back) before the slot is
            data["session"] = session
            return await handler(event, data)
