"""`qingshui jobs list` / `jobs run NAME --at …`, and the lease-guarded scheduler behind the service."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.__main__ import build_parser
from bot.cli import jobs as jobs_command
from bot.config import Settings
from bot.errors import UserError
from bot.scheduler import JobScheduler, next_runs
from bot.store.models import JobRun, Outbox
from bot.telegram.background import start_background
from tests import factories
from tests.conftest import make_settings
from tests.sending import Clock, fake_bot

REMINDER_MOMENT = dt.datetime(2026, 5, 20, 1, 30, tzinfo=dt.UTC)  # 09:30 in Jinzhong


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["jobs", *argv])


async def two_contacts(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s, "祁县")
        py = await factories.county(s, "平遥县")
        await factories.project(s, qx, "JZ-001")
        await factories.project(s, py, "JZ-010")
        await factories.person(s, county_row=qx, telegram_id=5001, name="王联络")
        await factories.person(s, county_row=py, telegram_id=5002, name="李联络")
        await s.commit()


async def outbox_count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Outbox)) or 0)


async def test_jobs_run_twice_for_the_same_moment_queues_one_message_each(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await two_contacts(sessionmaker)
    assert await jobs_command.main(parse("run", "reminders", "--at", "2026-05-20T09:30"), settings) == 0
    first = capsys.readouterr().out
    assert "新加入发送队列 2 条消息" in first
    assert "祁县 王联络" in first and "平遥县 李联络" in first
    assert "不直接发送" in first  # it queues; the service sends
    assert await jobs_command.main(parse("run", "reminders", "--at", "2026-05-20T09:30"), settings) == 0
    second = capsys.readouterr().out
    assert "没有新的消息需要发送" in second
    assert await outbox_count(sessionmaker) == 2
    async with sessionmaker() as s:
        record = await s.get(JobRun, "reminders")
        assert record is not None and record.last_at == REMINDER_MOMENT  # naive --at: the city's zone
        rows = list(await s.scalars(select(Outbox)))
        assert {r.chat_id for r in rows} == {5001, 5002} and {r.state for r in rows} == {"pending"}


async def test_jobs_run_in_english_and_with_an_offset(
    sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(db_url, tmp_path, default_language="en")
    await two_contacts(sessionmaker)
    assert await jobs_command.main(parse("run", "reminders", "--at", "2026-05-20T01:30:00+00:00"), settings) == 0
    out = capsys.readouterr().out
    assert "Ran reminders" in out and "2026-05-20 09:30" in out
    assert "2 new messages queued" in out and "does not send" in out
    assert await jobs_command.main(parse("run", "reminders", "--at", "2026-05-19T10:00"), settings) == 0
    assert "no reminder due now" in capsys.readouterr().out


async def test_jobs_run_rejects_a_malformed_moment(settings: Settings) -> None:
    with pytest.raises(UserError, match="--at"):
        await jobs_command.main(parse("run", "reminders", "--at", "next tuesday"), settings)


async def test_jobs_list_shows_next_and_last_runs_in_the_city_zone(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await two_contacts(sessionmaker)
    await jobs_command.main(parse("run", "reminders", "--at", "2026-05-20T09:30"), settings)
    capsys.readouterr()
    assert await jobs_command.main(parse("list"), settings) == 0
    out = capsys.readouterr().out
    for name in ("reminders", "alerts", "digest"):
        assert f"• {name} —" in out
    assert "上次运行：2026-05-20 09:30" in out and "从未运行" in out
    assert "每周一 09:00" in out


def test_next_runs_follow_the_settings_in_the_city_zone(tmp_path: Path) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db", tmp_path, reminder_time="10:15", digest_weekday=4,
                             digest_time="17:00")
    upcoming = next_runs(settings, dt.datetime(2026, 5, 20, 3, 0, tzinfo=dt.UTC))  # Wed 11:00 local
    reminders, alerts, digest = (upcoming[n] for n in ("reminders", "alerts", "digest"))
    assert reminders is not None and reminders.isoformat() == "2026-05-21T10:15:00+08:00"
    assert alerts is not None and alerts.isoformat() == "2026-05-20T11:15:00+08:00"
    assert digest is not None and digest.isoformat() == "2026-05-22T17:00:00+08:00"


async def test_only_the_lease_holder_runs_jobs_and_it_catches_up_on_taking_the_lease(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await two_contacts(sessionmaker)
    clock = Clock(REMINDER_MOMENT + dt.timedelta(hours=3))  # the service starts after the reminder time
    kicks: list[str] = []
    first = JobScheduler(settings, sessionmaker, clock=clock, holder="first", on_queued=lambda: kicks.append("k"))
    second = JobScheduler(settings, sessionmaker, clock=clock, holder="second")
    assert await first.keeper.renew_once()  # gaining the lease starts a catch-up of every job
    assert not await second.keeper.renew_once()
    assert await second.run_now("reminders") is None  # not the holder: does nothing
    await asyncio.gather(*first._tasks)
    assert await outbox_count(sessionmaker) == 2 and kicks == ["k"]
    async with sessionmaker() as s:
        assert await s.get(JobRun, "reminders") is not None
    # the holder dies; once its lease expires the other one takes over and catches up (nothing new)
    clock.advance(seconds=settings.lease_seconds + 1)
    assert await second.keeper.renew_once()
    await asyncio.gather(*second._tasks)
    assert await outbox_count(sessionmaker) == 2


async def test_background_starts_and_sends_the_catch_up_then_stops_cleanly(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await two_contacts(sessionmaker)
    async with fake_bot() as (fake, bot):
        fake.user(5001)
        fake.user(5002)
        clock = Clock(REMINDER_MOMENT + dt.timedelta(hours=1))
        background = await start_background(settings, bot, sessionmaker, clock=clock)
        try:
            await fake.wait_for(lambda r: r.chat_id == 5001)
            await fake.wait_for(lambda r: r.chat_id == 5002)
        finally:
            await background.stop(grace=5)
        assert background.sender_task.done() and not background.scheduler.scheduler.running
        assert not background.scheduler.keeper.held
    async with sessionmaker() as s:
        assert {r.state for r in await s.scalars(select(Outbox))} == {"sent"}
