"""The database gate: at most `slots` updates use the database at once, the others wait in the order they
came; an update talking to Telegram gives back its connection and its turn, and takes a turn again after."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import make_engine, open_pool
from bot.store.db_gate import DbGate, away_from_database, update_slots
from bot.store.models import County


def test_slots_leave_room_for_the_sender_and_two_connections_per_update() -> None:
    assert update_slots(10) == 4
    assert update_slots(30) == 14
    assert update_slots(3) == 1  # never none


async def test_no_more_than_the_slots_at_once_and_the_rest_in_order(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gate = DbGate(2)
    inside, most, order = 0, 0, []

    async def update(n: int) -> None:
        nonlocal inside, most
        async with sessionmaker() as session, gate.held(session):
            inside += 1
            most = max(most, inside)
            order.append(n)
            await session.execute(select(County))
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(update(n) for n in range(10)))
    assert most == 2
    assert order == list(range(10))
    assert gate.free == 2


async def test_talking_to_telegram_gives_back_the_connection_and_the_turn(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    gate = DbGate(1)
    engine = sessionmaker.kw["bind"]
    others_ran = asyncio.Event()

    async def other_update() -> None:
        async with sessionmaker() as session, gate.held(session):
            await session.execute(text("SELECT 1"))
            others_ran.set()

    async with sessionmaker() as session, gate.held(session):
        session.add(County(name="祁县", sort_order=1))
        await session.flush()  # written, not yet committed
        other = asyncio.create_task(other_update())
        async with away_from_database():  # an answer on its way to Telegram
            assert not session.in_transaction()  # committed before the answer goes
            assert engine.pool.checkedout() <= 1  # only the other update's, if it is running now
            await asyncio.wait_for(others_ran.wait(), 5)  # it had the turn while this one waited
        assert gate.free == 0  # the turn is taken again before the handler goes on
        await other
    async with sessionmaker() as session:
        assert await session.scalar(select(County.name)) == "祁县"  # the commit was real
    assert gate.free == 1


async def test_a_cancelled_update_leaves_the_count_right(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    gate = DbGate(1)
    async with sessionmaker() as first, gate.held(first):
        async def waiting() -> None:
            async with sessionmaker() as session, gate.held(session):
                pass

        task = asyncio.create_task(waiting())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gate.free == 1


async def test_the_pool_is_opened_at_start_on_postgresql(db_url: str) -> None:
    """`qingshui run` opens the connections the updates take turns with before the first update: on
    PostgreSQL they then wait for no login; SQLite opens its file when needed."""
    engine = make_engine(db_url, pool_size=10)
    try:
        await open_pool(engine, 8)
        idle = engine.sync_engine.pool.checkedin()  # type: ignore[attr-defined]
        assert idle == (8 if engine.dialect.name == "postgresql" else 0)
        async with engine.connect() as connection:  # and they serve as any other
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
