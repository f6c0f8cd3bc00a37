"""aiogram FSM storage in the database (the FsmRecord table), so a half-finished dialog survives a
restart when Redis is not configured. State and data are JSON; each write is its own short transaction.

It serves one process, as the per-process lock it comes with (SimpleEventIsolation, bot/telegram/app.py) already
requires; several instances share Redis instead (README, "Scaling out"). So what it has read or written
is kept in memory too, written through to the database: aiogram reads the state of every update, and that
read then costs no query."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import FsmRecord

KEEP_IN_MEMORY = 10_000  # keys (people); beyond that the memory starts afresh, read back from the database


class DbStorage(BaseStorage):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.key_builder = key_builder or DefaultKeyBuilder(with_bot_id=True, with_destiny=True)
        # key → (state, data as JSON): JSON so that a caller changing what it got changes nothing here
        self._known: dict[str, tuple[str | None, str]] = {}

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._write(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(self._key(key)))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        await self._write(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((await self._read(self._key(key)))[1])
        return data

    async def close(self) -> None:
        """The engine belongs to the application, which disposes of it."""

    async def _read(self, key: str) -> tuple[str | None, str]:
        known = self._known.get(key)
        if known is None:
            async with self.sessionmaker() as session:
                row = await session.get(FsmRecord, key)
                known = (row.state, json.dumps(row.data or {})) if row else (None, "{}")
            self._remember(key, known)
        return known

    def _remember(self, key: str, value: tuple[str | None, str]) -> None:
        if len(self._known) >= KEEP_IN_MEMORY and key not in self._known:
            self._known.clear()
        self._known[key] = value

    async def _write(self, key: StorageKey, **values: Any) -> None:
        name = self._key(key)
        self._known.pop(name, None)  # until the write is done: a failed write leaves the database to say
        for attempt in (1, 2):
            async with self.sessionmaker() as session:
                row = await session.get(FsmRecord, name)
                if row is None:
                    row = FsmRecord(key=name, state=None, data={})
                    session.add(row)
                for field, value in values.items():
                    setattr(row, field, value)
                written = (row.state, json.dumps(row.data or {}))
                if row.state is None and not row.data:  # nothing left to remember: keep the table small
                    if inspect(row).persistent:
                        await session.delete(row)
                    else:
                        session.expunge(row)
                try:
                    await session.commit()
                except IntegrityError:  # a write raced ours to create the row: update it
                    if attempt == 2:
                        raise
                    continue
                self._remember(name, written)
                return
