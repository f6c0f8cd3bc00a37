"""The scheduler lease: one holder at a time, renewed by it, taken over when it expires."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import make_engine, make_sessionmaker
from bot.store.lease import LeaseKeeper, current_holder, release, try_acquire
from tests.sending import Clock

T0 = dt.datetime(2026, 5, 20, 1, 0, tzinfo=dt.UTC)


async def test_two_holders_one_wins_until_the_lease_expires(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        assert await try_acquire(s, "scheduler", "a", T0, 30)
        assert not await try_acquire(s, "scheduler", "b", T0 + dt.timedelta(seconds=10), 30)
        assert await current_holder(s, "scheduler", T0 + dt.timedelta(seconds=10)) == "a"
        # the holder renews: still nobody else until the renewed expiry
        assert await try_acquire(s, "scheduler", "a", T0 + dt.timedelta(seconds=20), 30)
        assert not await try_acquire(s, "scheduler", "b", T0 + dt.timedelta(seconds=45), 30)
        # a stops renewing (crashed): b takes over once it has expired, and a cannot come back
        assert await try_acquire(s, "scheduler", "b", T0 + dt.timedelta(seconds=51), 30)
        assert await current_holder(s, "scheduler", T0 + dt.timedelta(seconds=51)) == "b"
        assert not await try_acquire(s, "scheduler", "a", T0 + dt.timedelta(seconds=52), 30)


async def test_released_lease_is_taken_at_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        assert await try_acquire(s, "scheduler", "a", T0, 30)
        await release(s, "scheduler", "b", T0)  # not b's to give
        assert not await try_acquire(s, "scheduler", "b", T0, 30)
        await release(s, "scheduler", "a", T0)
        assert await current_holder(s, "scheduler", T0) is None
        assert await try_acquire(s, "scheduler", "b", T0, 30)


async def test_concurrent_first_takes_have_exactly_one_winner(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    try:
        async def take(index: int) -> bool:
            async with make_sessionmaker(engines[index])() as s:
                return await try_acquire(s, "scheduler", f"holder-{index}", T0, 30)

        wins = await asyncio.gather(*(take(i) for i in range(4)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(wins) == 1


async def test_keeper_acts_only_while_its_renewal_is_fresh(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = Clock(T0)
    gained: list[str] = []

    async def on_acquired_a() -> None:
        gained.append("a")

    async def on_acquired_b() -> None:
        gained.append("b")

    a = LeaseKeeper(sessionmaker, "scheduler", "a", 30, clock=clock, on_acquired=on_acquired_a)
    b = LeaseKeeper(sessionmaker, "scheduler", "b", 30, clock=clock, on_acquired=on_acquired_b)
    assert await a.renew_once() and a.held
    assert not await b.renew_once() and not b.held
    clock.advance(seconds=10)
    assert await a.renew_once()  # renewing does not count as gaining it again
    assert gained == ["a"]
    # a is cut off from the database and cannot renew: it stops acting before the lease can expire
    clock.advance(seconds=21)
    assert not a.held
    assert not await b.renew_once()  # the lease itself has not expired yet
    clock.advance(seconds=10)
    assert await b.renew_once() and b.held
    assert gained == ["a", "b"]
    assert not await a.renew_once() and not a.held


async def test_keeper_run_releases_on_stop(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = Clock(T0)
    taken = asyncio.Event()

    async def on_acquired() -> None:
        taken.set()

    keeper = LeaseKeeper(sessionmaker, "scheduler", "a", 30, clock=clock, on_acquired=on_acquired)
    stop = asyncio.Event()
    task = asyncio.create_task(keeper.run(stop))
    await asyncio.wait_for(taken.wait(), 5)
    assert keeper.held
    stop.set()
    await asyncio.wait_for(task, 5)
    assert not keeper.held
    async with sessionmaker() as s:
        assert await current_holder(s, "scheduler", T0) is None


async def test_keeper_survives_a_database_it_cannot_even_connect_to(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """asyncpg raises a bare OSError when the server refuses connections: the keeper goes on trying."""
    down = True

    def sessions() -> AsyncSession:
        if down:
            raise ConnectionRefusedError(111, "Connect call failed")
        return sessionmaker()

    keeper = LeaseKeeper(sessions, "scheduler", "a", 30, clock=lambda: T0)  # type: ignore[arg-type]
    assert not await keeper.renew_once()
    down = False
    assert await keeper.renew_once() and keeper.held
