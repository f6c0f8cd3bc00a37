"""Monthly reminders (一月一更新): the right day, one message per contact, follow-ups only to the missing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.cycle import due_step, monthly_cycle
from bot.services.reports import ReportInput, save_report
from bot.store.models import County, Outbox, Person, Project
from bot.telegram.callbacks import ProjectAction
from bot.telegram.sender import Sender
from jobs.base import JobContext
from jobs.registry import run_job
from tests import factories
from tests.conftest import make_settings
from tests.sending import Clock, fake_bot

SH = ZoneInfo("Asia/Shanghai")
NINE_THIRTY = dt.time(9, 30)


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH).astimezone(dt.UTC)


# ---------------------------------------------------------------- the calendar (pure)


def test_national_day_moves_the_reminder_to_the_first_working_day_after_it() -> None:
    cycle = monthly_cycle("2026-10", reminder_day=1, deadline_day=25, followup_every=2)
    assert cycle.reminder_day == dt.date(2026, 10, 8)
    assert cycle.deadline == dt.date(2026, 10, 26)  # the 25th is a Sunday: moved like the reminder day


@pytest.mark.parametrize("day", [15, 16, 20, 23])
def test_spring_festival_moves_the_reminder_to_24_february(day: int) -> None:
    assert monthly_cycle("2026-02", reminder_day=day, deadline_day=25, followup_every=2).reminder_day == dt.date(
        2026, 2, 24
    )


def test_a_make_up_saturday_is_a_working_day_and_keeps_the_reminder() -> None:
    assert monthly_cycle("2026-02", reminder_day=14, deadline_day=25, followup_every=2).reminder_day == dt.date(
        2026, 2, 14
    )


def test_follow_ups_every_two_working_days_until_the_deadline() -> None:
    cycle = monthly_cycle("2026-05", reminder_day=20, deadline_day=25, followup_every=2)
    # Wed 20 → Fri 22 → (Tue 26 is past Mon 25, the deadline)
    assert cycle.steps == (dt.date(2026, 5, 20), dt.date(2026, 5, 22))
    every_day = monthly_cycle("2026-05", reminder_day=20, deadline_day=25, followup_every=1)
    assert every_day.steps == tuple(dt.date(2026, 5, d) for d in (20, 21, 22, 25))


def test_the_due_step_is_the_latest_one_whose_time_has_come() -> None:
    cycle = monthly_cycle("2026-05", reminder_day=20, deadline_day=25, followup_every=2)
    assert due_step(cycle, local(2026, 5, 20, 9, 29), NINE_THIRTY, SH) is None
    assert due_step(cycle, local(2026, 5, 20, 9, 30), NINE_THIRTY, SH) == 0
    assert due_step(cycle, local(2026, 5, 23, 15, 0), NINE_THIRTY, SH) == 1
    assert due_step(cycle, local(2026, 5, 25, 23, 0), NINE_THIRTY, SH) == 1
    assert due_step(cycle, local(2026, 5, 26, 9, 30), NINE_THIRTY, SH) is None  # past the deadline: alerts' turn


# ---------------------------------------------------------------- the job


async def ledger(session: AsyncSession) -> dict[str, Any]:
    """Two counties with contacts, one without; a completed project; an English-speaking contact."""
    qx = await factories.county(session, "祁县", 1)
    py = await factories.county(session, "平遥县", 2)
    ls = await factories.county(session, "灵石县", 3)
    await factories.project(session, qx, "JZ-001", name="祁县城区雨污分流改造工程")
    await factories.project(session, qx, "JZ-002", name="昌源河<生态>修复", status="not_started", progress=0)
    await factories.project(session, qx, "JZ-003", name="已完工的污水厂", status="completed", progress=100)
    await factories.project(session, py, "JZ-010", name="平遥污水处理厂提标")
    await factories.project(session, ls, "JZ-020", name="灵石入河排污口整治")
    wang = await factories.person(session, county_row=qx, telegram_id=5001, name="王<联络>")
    li = await factories.person(session, county_row=py, telegram_id=5002, name="Li Ming", language="en")
    await factories.person(session, "county_leader", qx, telegram_id=5003, name="赵县长")
    await factories.person(session, county_row=py, telegram_id=None, name="未绑定")
    gone = await factories.person(session, county_row=py, telegram_id=5004, name="已拉黑")
    gone.reachable = False
    await session.commit()
    return {"qx": qx, "py": py, "wang": wang, "li": li}


async def run_reminders(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime) -> int:
    async with sessionmaker() as s:
        return (await run_job(s, "reminders", now, JobContext.from_settings(settings))).queued


async def queued(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessionmaker() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def project_ids(sessionmaker: async_sessionmaker[AsyncSession], *codes: str) -> list[int]:
    async with sessionmaker() as s:
        return [(await s.scalar(select(Project.id).where(Project.code == code))) or 0 for code in codes]


async def test_each_contact_gets_one_message_listing_what_is_missing(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        people = await ledger(s)
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 20, 9, 29)) == 0  # not yet
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 20, 9, 30)) == 2
    wang, li = await queued(sessionmaker)
    assert (wang.chat_id, wang.key, wang.kind) == (5001, f"reminder:{people['wang'].id}:2026-05:0", "reminder")
    text = wang.payload["text"]
    assert "JZ-001" in text and "JZ-002" in text and "JZ-003" not in text  # completed: no monthly report needed
    assert "王&lt;联络&gt;" in text and "昌源河&lt;生态&gt;修复" in text  # names are escaped
    assert "2026-05-25" in text  # the deadline
    buttons = [row[0]["callback_data"] for row in wang.payload["reply_markup"]["inline_keyboard"]]
    ids = await project_ids(sessionmaker, "JZ-001", "JZ-002")
    assert [ProjectAction.unpack(b) for b in buttons] == [
        ProjectAction(action="report", project_id=ids[0]), ProjectAction(action="report", project_id=ids[1]),
    ]
    assert wang.payload["project_codes"] == ["JZ-001", "JZ-002"]
    assert li.chat_id == 5002 and "JZ-010" in li.payload["text"] and "monthly update" in li.payload["text"]
    # the same moment again, or later the same day: nothing new
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 20, 9, 30)) == 0
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 20, 15, 0)) == 0
    assert len(await queued(sessionmaker)) == 2


async def test_follow_ups_go_only_to_contacts_still_missing_until_the_deadline(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        people = await ledger(s)
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 20, 9, 30)) == 2
    async with sessionmaker() as s:
        for code in ("JZ-001", "JZ-002"):  # 祁县 reports everything; 平遥县 does not
            project = await s.scalar(select(Project).where(Project.code == code))
            assert project is not None
            await save_report(s, project, ReportInput(no_change=True), person_id=people["wang"].id,
                              now=local(2026, 5, 21, 10, 0), tz=SH)
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 21, 9, 30)) == 0  # no follow-up that day
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 22, 9, 30)) == 1
    follow_up = (await queued(sessionmaker))[-1]
    assert follow_up.chat_id == 5002 and follow_up.key.endswith(":2026-05:1")
    assert "still have no report" in follow_up.payload["text"]
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 25, 9, 30)) == 0  # deadline day: no new step
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 26, 9, 30)) == 0  # past it: escalation's turn


async def test_a_contact_with_nothing_missing_gets_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        await factories.project(s, qx, "JZ-003", status="completed", progress=100)
        await factories.person(s, county_row=qx)
        await s.commit()
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 20, 9, 30)) == 0
    assert await queued(sessionmaker) == []


async def test_a_contact_first_reached_on_a_follow_up_day_gets_the_reminder_wording(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        await ledger(s)
    # the service was down on the 20th and 21st
    assert await run_reminders(sessionmaker, settings, local(2026, 5, 22, 11, 0)) == 2
    wang, _ = await queued(sessionmaker)
    assert wang.key.endswith(":2026-05:1") and "月度进展填报" in wang.payload["text"]


@pytest.mark.parametrize(
    ("reminder_day", "deadline_day", "too_early", "due"),
    [
        (1, 10, local(2026, 10, 1, 9, 30), local(2026, 10, 8, 9, 30)),  # National Day
        (16, 26, local(2026, 2, 16, 9, 30), local(2026, 2, 24, 9, 30)),  # Spring Festival
        (14, 26, local(2026, 2, 13, 9, 30), local(2026, 2, 14, 9, 30)),  # its make-up Saturday
    ],
)
async def test_the_job_follows_the_official_calendar(
    sessionmaker: async_sessionmaker[AsyncSession], db_url: str, tmp_path: Path,
    reminder_day: int, deadline_day: int, too_early: dt.datetime, due: dt.datetime,
) -> None:
    settings = make_settings(db_url, tmp_path, reminder_day=reminder_day, deadline_day=deadline_day)
    async with sessionmaker() as s:
        await ledger(s)
    assert await run_reminders(sessionmaker, settings, too_early) == 0
    assert await run_reminders(sessionmaker, settings, due) == 2


async def test_a_run_in_quiet_hours_is_sent_at_their_end_and_not_before(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        await ledger(s)
    evening = local(2026, 5, 20, 22, 0)  # e.g. the service came back up late in the evening
    assert await run_reminders(sessionmaker, settings, evening) == 2
    rows = await queued(sessionmaker)
    assert {r.not_before for r in rows} == {local(2026, 5, 21, 8, 0)}
    async with fake_bot() as (fake, bot):
        fake.user(5001)
        fake.user(5002)
        clock = Clock(evening)
        sender = Sender(bot, sessionmaker, settings, clock=clock)
        assert await sender.drain_once() == 0
        clock.now = local(2026, 5, 21, 7, 59)
        assert await sender.drain_once() == 0
        assert fake.sent == []
        clock.now = local(2026, 5, 21, 8, 0)
        assert await sender.drain_once() == 2
        [message] = fake.messages_to(5001)
        [jz001] = await project_ids(sessionmaker, "JZ-001")
        assert message.callback_data()[0] == ProjectAction(action="report", project_id=jz001).pack()


async def test_unbound_unreachable_and_non_contacts_get_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        await ledger(s)
    await run_reminders(sessionmaker, settings, local(2026, 5, 20, 9, 30))
    async with sessionmaker() as s:
        recipients = set(await s.scalars(select(Person.name).join(Outbox, Outbox.person_id == Person.id)))
        assert recipients == {"王<联络>", "Li Ming"}
        # 灵石县 has a project but no contact: nothing here (the alerts job escalates after the deadline)
        ls = await s.scalar(select(County).where(County.name == "灵石县"))
        assert ls is not None
