"""aiogram FSM storage in the database (the FsmRecord table), so a half-finished dialog survives a
restart when Redis is not configured. State and data are JSON; each call is its own short transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import FsmRecord


class DbStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self.sessionmaker() as session:
            row = await session.get(FsmRecord, self._key(key))
            return row.state if row else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        await self._write(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self.sessionmaker() as session:
            row = await session.get(FsmRecord, self._key(key))
            return dict(row.data) if row and row.data else {}

    async def close(self) -> None:
        """The engine belongs to the application, which disposes of it."""

    async def _write(self, key: StorageKey, **values: Any) -> None:
        for attempt in (1, 2):
            async with self.sessionmaker() as session:
                row = await session.get(FsmRecord, self._key(key))
                if row is None:
                    row = FsmRecord(key=self._key(key), state=None, data={})
                    session.add(row)
                for name, value in values.items():
                    setattr(row, name, value)
                if row.state is None and not row.data:  # nothing left to remember: keep the table small
                    if inspect(row).persistent:
                        await session.delete(row)
                    else:
                        session.expunge(row)
                try:
                    await session.commit()
                    return
                except IntegrityError:  # another instance created the row first: update theirs
                    if attempt == 2:
                        raise
