"""An update is recorded as handled in the same transaction as the handler's work: a crash before that
commit leaves it unrecorded (Telegram's redelivery is handled), after it the redelivery is dropped, and
two deliveries handled at the same moment keep one handler's work."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest
from aiogram.types import Update
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import County, ProcessedUpdate, utcnow
from handlers.dedupe import DedupeMiddleware

UPDATE = Update.model_validate({"update_id": 424242})
_names = itertools.count(1)


async def feed(mw: DedupeMiddleware, sessionmaker: async_sessionmaker[AsyncSession], handler: Any) -> Any:
    async with sessionmaker() as session:
        return await mw(handler, UPDATE, {"session": session})


async def saves_a_county(_event: Any, data: dict[str, Any]) -> str:
    """The handler's work: one row, committed."""
    session: AsyncSession = data["session"]
    session.add(County(name=f"县{next(_names)}"))
    await session.commit()
    return "handled"


async def counties(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(County)) or 0)


async def recorded(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    async with sessionmaker() as session:
        return await session.get(ProcessedUpdate, UPDATE.update_id) is not None


async def test_dying_before_the_commit_leaves_the_update_to_its_redelivery(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    mw = DedupeMiddleware(sessionmaker)
    seen_by_a_restarted_instance: list[bool] = []

    async def dies_before_committing(_event: Any, data: dict[str, Any]) -> None:
        data["session"].add(County(name="未保存"))
        # were the process SIGKILLed here, this is what the redelivery would find
        seen_by_a_restarted_instance.append(await recorded(sessionmaker))
        raise RuntimeError("the process is gone")

    with pytest.raises(RuntimeError):
        await feed(mw, sessionmaker, dies_before_committing)
    assert seen_by_a_restarted_instance == [False]
    assert await feed(mw, sessionmaker, saves_a_county) == "handled"  # Telegram redelivers: handled
    assert await recorded(sessionmaker) and await counties(sessionmaker) == 1
    assert await feed(mw, sessionmaker, saves_a_county) is None  # and once more: dropped
    assert await counties(sessionmaker) == 1


async def test_an_update_whose_handler_commits_nothing_is_recorded_after_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    mw = DedupeMiddleware(sessionmaker)
    calls: list[int] = []

    async def reads_only(_event: Any, _data: dict[str, Any]) -> None:
        calls.append(1)

    await feed(mw, sessionmaker, reads_only)
    await feed(mw, sessionmaker, reads_only)
    assert calls == [1]


async def test_two_deliveries_at_the_same_moment_keep_one_handlers_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    mw_a, mw_b = DedupeMiddleware(sessionmaker), DedupeMiddleware(sessionmaker)  # two instances
    both_checked = asyncio.Barrier(2)

    async def saves_after_both_checked(event: Any, data: dict[str, Any]) -> str:
        await both_checked.wait()  # neither saw the other's record: both run the handler
        return await saves_a_county(event, data)

    results = await asyncio.wait_for(asyncio.gather(
        feed(mw_a, sessionmaker, saves_after_both_checked), feed(mw_b, sessionmaker, saves_after_both_checked),
    ), 30)
    assert sorted(map(str, results)) == ["None", "handled"]
    assert await counties(sessionmaker) == 1


async def test_old_records_are_pruned(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        session.add(ProcessedUpdate(update_id=1, at=utcnow() - dt.timedelta(days=3)))
        session.add(ProcessedUpdate(update_id=2, at=utcnow() - dt.timedelta(hours=3)))
        await session.commit()
    await feed(DedupeMiddleware(sessionmaker), sessionmaker, saves_a_county)
    async with sessionmaker() as session:
        kept = set(await session.scalars(select(ProcessedUpdate.update_id)))
    assert kept == {2, UPDATE.update_id}


async def test_a_database_gone_after_the_handler_does_not_turn_its_answer_into_an_error(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Recording a read-only update and pruning are best effort: the person already has their answer."""

    def refused() -> AsyncSession:
        raise ConnectionRefusedError(111, "Connect call failed")  # what asyncpg raises, unwrapped

    async def answers(_event: Any, _data: dict[str, Any]) -> str:
        return "answered"

    mw = DedupeMiddleware(refused)  # type: ignore[arg-type]
    assert await feed(mw, sessionmaker, answers) == "answered"


async def test_an_answer_before_the_work_does_not_mark_the_update_handled(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """An answer ends the update's read-only transaction before it goes out (bot.store.db_gate); that commit
    carries nothing, so a crash after it and before the work's own commit leaves the update to be handled
    again when Telegram redelivers it."""
    mw = DedupeMiddleware(sessionmaker)
    recorded_before_the_work: list[bool] = []

    async def answers_then_crashes(_event: Any, data: dict[str, Any]) -> None:
        session: AsyncSession = data["session"]
        await session.scalar(select(func.count()).select_from(County))  # a read, like finding the project
        await session.commit()  # what an answer going out does
        async with sessionmaker() as other:
            recorded_before_the_work.append(await other.get(ProcessedUpdate, UPDATE.update_id) is not None)
        session.add(County(name=f"县{next(_names)}"))
        await session.flush()
        raise RuntimeError("killed before the work's commit")

    with pytest.raises(RuntimeError):
        await feed(mw, sessionmaker, answers_then_crashes)
    assert recorded_before_the_work == [False]
    assert await feed(mw, sessionmaker, saves_a_county) == "handled"  # the redelivery does the work
    assert await counties(sessionmaker) == 1
