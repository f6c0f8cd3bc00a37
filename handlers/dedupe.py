"""A repeated update (same update_id, as Telegram may redeliver) is applied once.

The update id is recorded in its own transaction before anything else happens; a second delivery
finds it and is dropped. If handling then fails, the record is removed again, so a redelivery gets
another chance instead of being lost (Healthchecks' gap: never mark done before it is done)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import ProcessedUpdate, utcnow

log = logging.getLogger(__name__)
KEEP = dt.timedelta(days=2)  # Telegram keeps an unconfirmed update for 24 hours
PRUNE_EVERY = 500


class DedupeMiddleware(BaseMiddleware):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._seen = 0

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        async with self.sessionmaker() as session:
            session.add(ProcessedUpdate(update_id=event.update_id, at=utcnow()))
            try:
                await session.commit()
            except IntegrityError:
                log.info("update %s delivered again: dropped", event.update_id)
                return None
        await self._prune()
        try:
            return await handler(event, data)
        except BaseException:
            await self._forget(event.update_id)
            raise

    async def _forget(self, update_id: int) -> None:
        with suppress(SQLAlchemyError, OSError):
            async with self.sessionmaker() as session:
                await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id))
                await session.commit()

    async def _prune(self) -> None:
        self._seen += 1
        if self._seen % PRUNE_EVERY:
            return
        async with self.sessionmaker() as session:
            await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < utcnow() - KEEP))
            await session.commit()
