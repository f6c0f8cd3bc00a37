"""The dialog storage without Redis: what a guided report remembers between steps, kept in the database
(so it survives a restart) and in memory (so reading it costs no query)."""

from __future__ import annotations

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.fsm_storage import DbStorage
from bot.store.models import FsmRecord

KEY = StorageKey(bot_id=1, chat_id=42, user_id=42)


async def test_state_and_data_survive_a_restart(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    first = DbStorage(sessionmaker)
    await first.set_state(KEY, "Guided:progress")
    await first.set_data(KEY, {"code": "JZ-017", "steps": {"status": "started"}})
    again = DbStorage(sessionmaker)  # a new process
    assert await again.get_state(KEY) == "Guided:progress"
    assert await again.get_data(KEY) == {"code": "JZ-017", "steps": {"status": "started"}}


async def test_what_a_caller_changes_is_not_stored_until_written(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    storage = DbStorage(sessionmaker)
    await storage.set_data(KEY, {"quick": {"t1": {"code": "JZ-017"}}})
    data = await storage.get_data(KEY)
    data["quick"]["t2"] = {"code": "JZ-018"}  # a handler that fails before set_data
    assert await storage.get_data(KEY) == {"quick": {"t1": {"code": "JZ-017"}}}


async def test_a_second_read_costs_no_query(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    storage = DbStorage(sessionmaker)
    await storage.set_state(KEY, "Guided:status")
    other = StorageKey(bot_id=1, chat_id=7, user_id=7)
    statements: list[str] = []
    engine = sessionmaker.kw["bind"].sync_engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert await storage.get_state(KEY) == "Guided:status"  # written by this process: known
        assert await storage.get_state(other) is None  # read once from the database
        assert await storage.get_state(other) is None
        assert await storage.get_data(other) == {}
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


async def test_a_finished_dialog_leaves_no_row(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    storage = DbStorage(sessionmaker)
    await storage.set_state(KEY, "Guided:status")
    await storage.set_data(KEY, {"code": "JZ-017"})
    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(FsmRecord)) == 0
    assert await DbStorage(sessionmaker).get_state(KEY) is None
    assert await storage.get_state(KEY) is None


async def test_a_failed_write_is_not_remembered(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    storage = DbStorage(sessionmaker)
    await storage.set_state(KEY, "Guided:status")
    with pytest.raises(TypeError):
        await storage.set_data(KEY, {"not json": object()})
    assert await storage.get_state(KEY) == "Guided:status"
    assert await storage.get_data(KEY) == {}
