"""The outbox does not grow or go stale without end: old sent and dead rows are pruned (with the digest
files only they named), and a monthly reminder still unsent when the month's deadline has passed is
marked expired instead of going out late."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import jobs as jobs_command
from bot.config import Settings
from bot.scheduler import JobScheduler
from bot.store.models import Outbox, Person
from bot.store.outbox import enqueue, expired, outbox_key, row
from bot.store.retention import prune_outbox
from bot.telegram.sender import Sender
from tests import factories
from tests.sending import Clock, fake_bot
from tests.test_jobs_cli import parse
from tests.test_reminders import ledger, local, queued, run_reminders

NOW = dt.datetime(2026, 11, 20, 4, 0, tzinfo=dt.UTC)  # 12:00 in Jinzhong


def days_ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


async def queue_row(
    sessionmaker: async_sessionmaker[AsyncSession],
    name: str,
    state: str,
    age_days: int,
    *,
    path: str | None = None,
) -> None:
    """One outbox row `age_days` old in `state` (a photo naming `path`, or a text message)."""
    async with sessionmaker() as s:
        person = (await s.scalars(select(Person).limit(1))).first()
        assert person is not None and person.telegram_id is not None
        payload = {"path": path, "caption": name} if path else {"text": name, "reply_markup": None}
        await enqueue(s, key=outbox_key("test", person.id, name), kind="test", chat_id=person.telegram_id,
                      person_id=person.id, payload=payload, method="photo" if path else "message",
                      not_before=days_ago(age_days))
        await s.execute(update(Outbox).where(Outbox.key == outbox_key("test", person.id, name)).values(
            state=state, sent_at=days_ago(age_days) if state == "sent" else None,
            claimed_until=NOW + dt.timedelta(minutes=2) if state == "sending" else None))
        await s.commit()


async def captions(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    return {row.payload.get("text") or row.payload.get("caption") for row in await queued(sessionmaker)}


async def test_sent_and_dead_rows_are_pruned_after_their_retention_and_only_their_files_go(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        await factories.person(s, county_row=await factories.county(s), telegram_id=5001, name="王联络")
        await s.commit()
    data = settings.data_dir
    old_week, this_week = "outbox/2026-05-04", "outbox/2026-11-16"
    for relative in (f"{old_week}/digest-city-zh.png", f"{old_week}/ledger-city-zh.xlsx",
                     f"{this_week}/digest-city-zh.png", "photos/JZ-001/report.jpg"):
        (data / relative).parent.mkdir(parents=True, exist_ok=True)
        (data / relative).write_bytes(b"evidence")

    # the settings' defaults: sent rows kept 90 days, dead and expired ones 365
    await queue_row(sessionmaker, "sent long ago", "sent", 200)
    await queue_row(sessionmaker, "old chart, sent", "sent", 200, path=f"{old_week}/digest-city-zh.png")
    await queue_row(sessionmaker, "old workbook, sent", "sent", 200, path=f"{old_week}/ledger-city-zh.xlsx")
    await queue_row(sessionmaker, "the same old chart, failed", "dead", 200, path=f"{old_week}/digest-city-zh.png")
    await queue_row(sessionmaker, "sent last month", "sent", 30)
    await queue_row(sessionmaker, "this week's chart", "sent", 4, path=f"{this_week}/digest-city-zh.png")
    await queue_row(sessionmaker, "failed half a year ago", "dead", 200)
    await queue_row(sessionmaker, "failed two years ago", "dead", 800)
    await queue_row(sessionmaker, "expired two years ago", "expired", 800)
    await queue_row(sessionmaker, "still waiting since long ago", "pending", 800)
    await queue_row(sessionmaker, "being sent", "sending", 800)

    pruned = await prune_outbox(sessionmaker, settings, NOW, batch=2)  # small batches: several transactions

    assert (pruned.sent, pruned.dead) == (3, 2)
    assert await captions(sessionmaker) == {
        "the same old chart, failed", "sent last month", "this week's chart", "failed half a year ago",
        "still waiting since long ago", "being sent",
    }
    # the old workbook was named by pruned rows only; the old chart is still named by a dead row kept
    assert not (data / old_week / "ledger-city-zh.xlsx").exists()
    assert (data / old_week / "digest-city-zh.png").exists() and (data / this_week / "digest-city-zh.png").exists()
    assert (data / "photos/JZ-001/report.jpg").read_bytes() == b"evidence"  # report photos are never the outbox's

    # a year later the dead row goes too, and with it the last file of that day and its folder
    await prune_outbox(sessionmaker, settings, NOW + dt.timedelta(days=200))
    assert "the same old chart, failed" not in await captions(sessionmaker)
    assert not (data / old_week).exists()
    assert {"still waiting since long ago", "being sent"} <= await captions(sessionmaker)


async def test_the_lease_holder_prunes_when_it_catches_up(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        await factories.person(s, county_row=await factories.county(s), telegram_id=5001, name="王联络")
        await s.commit()
    await queue_row(sessionmaker, "sent long ago", "sent", 200)
    await queue_row(sessionmaker, "sent yesterday", "sent", 1)
    standby = JobScheduler(settings, sessionmaker, clock=lambda: NOW, holder="standby")
    await standby.prune()  # it does not hold the lease: leaves everything to the holder
    assert await captions(sessionmaker) == {"sent long ago", "sent yesterday"}
    holder = JobScheduler(settings, sessionmaker, clock=lambda: NOW, holder="holder")
    assert await holder.keeper.renew_once()
    await asyncio.gather(*holder._tasks)
    assert await captions(sessionmaker) == {"sent yesterday"}


async def test_a_reminder_unsent_by_the_deadline_is_not_sent_late_but_this_months_still_goes(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sessionmaker() as s:
        await ledger(s)
    # Friday 20 November 2026: the reminders are queued, but Telegram cannot be reached (nothing drains)
    assert await run_reminders(sessionmaker, settings, local(2026, 11, 20, 9, 30)) == 2
    # the service is back on Monday 21 December, after November's deadline (25th) and on December's reminder day
    december = local(2026, 12, 21, 10, 0)
    assert await run_reminders(sessionmaker, settings, december) == 2
    async with fake_bot() as (fake, bot):
        fake.user(5001)
        fake.user(5002)
        await Sender(bot, sessionmaker, settings, clock=Clock(december)).drain_once()
        sent = [r.text or "" for r in fake.sent if r.is_message]

    assert len(sent) == 2 and all("2026-12" in text and "2026-11" not in text for text in sent)
    rows = await queued(sessionmaker)
    by_period = {r.key.split(":")[2]: r for r in rows}
    assert sorted((r.key.split(":")[2], r.state) for r in rows) == [
        ("2026-11", "expired"), ("2026-11", "expired"), ("2026-12", "sent"), ("2026-12", "sent")]
    assert by_period["2026-11"].sent_at is None and by_period["2026-11"].message_id is None
    # the operator sees them in `jobs list`
    await jobs_command.main(parse("list"), settings)
    assert "过期未发 2 条" in capsys.readouterr().out


async def test_a_reminder_still_goes_on_the_deadline_day_itself(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        await ledger(s)
    assert await run_reminders(sessionmaker, settings, local(2026, 11, 20, 9, 30)) == 2
    deadline_evening = local(2026, 11, 25, 20, 30)  # Wednesday 25 November, before quiet hours
    async with fake_bot() as (fake, bot):
        fake.user(5001)
        fake.user(5002)
        assert await Sender(bot, sessionmaker, settings, clock=Clock(deadline_evening)).drain_once() == 2
    assert {r.state for r in await queued(sessionmaker)} == {"sent"}


def test_an_outbox_row_without_an_expiry_never_expires() -> None:
    plain = row(key="k", kind="alert", chat_id=1, person_id=None, payload={"text": "x"})
    dated = row(key="k", kind="reminder", chat_id=1, person_id=None, payload={"text": "x"}, expires_at=NOW)
    later = NOW + dt.timedelta(days=3650)
    assert not expired(plain["payload"], later)
    assert not expired(dated["payload"], NOW - dt.timedelta(seconds=1)) and expired(dated["payload"], NOW)
