"""The alerts job on a controlled clock: who hears about a problem, when, once, and when it is fixed."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram.html_check import check_html
from bot.services.reports import ReportInput, save_report
from bot.store.models import County, Milestone, Outbox, Person, Problem, Project
from bot.telegram.callbacks import ProjectAction
from jobs.base import JobContext
from jobs.registry import run_job
from tests import factories

SH = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH).astimezone(dt.UTC)


async def alerts(sm: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime) -> int:
    async with sm() as s:
        return (await run_job(s, "alerts", now, JobContext.from_settings(settings))).queued


async def outbox(sm: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sm() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def problems(sm: async_sessionmaker[AsyncSession]) -> list[Problem]:
    async with sm() as s:
        return list(await s.scalars(select(Problem).order_by(Problem.id)))


async def ledger(sm: async_sessionmaker[AsyncSession], *, progress: int = 20,
                 milestones: tuple[tuple[str, dt.date | None, dt.date | None], ...] = ()) -> dict[str, int]:
    """祁县 with one project planned over 2026, its contact, its county leader, a city leader, and
    平遥县 with its own contact (who must hear nothing about 祁县). September's update is in."""
    async with sm() as s:
        qx = await factories.county(s, "祁县", 1)
        py = await factories.county(s, "平遥县", 2)
        p = await factories.project(s, qx, progress=progress, milestones=milestones)
        people = {
            "contact": await factories.person(s, "contact", qx, telegram_id=5001, name="王联络"),
            "county_leader": await factories.person(s, "county_leader", qx, telegram_id=5002, name="李县长"),
            "leader": await factories.person(s, "leader", None, telegram_id=5003, name="张市长"),
            "other": await factories.person(s, "contact", py, telegram_id=5004, name="赵联络"),
        }
        await s.commit()
        await save_report(s, p, ReportInput(no_change=True), person_id=people["contact"].id,
                          now=local(2026, 9, 10, 10, 0), tz=SH)
        return {"project": p.id, **{k: v.id for k, v in people.items()}}


async def test_each_step_goes_out_once_after_the_right_working_day_across_national_day(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await ledger(sessionmaker)  # 20 % done on 30 Sep, when the plan expects 75 %: red
    assert await alerts(sessionmaker, settings, local(2026, 9, 30, 10, 0)) == 1
    assert await alerts(sessionmaker, settings, local(2026, 9, 30, 10, 5)) == 0
    [first] = await outbox(sessionmaker)
    [problem] = await problems(sessionmaker)
    assert first.person_id == ids["contact"] and first.chat_id == 5001
    assert first.key == f"alert:{ids['contact']}:{problem.id}:1"
    text = first.payload["text"]
    assert "JZ-017" in text and "祁县" in text and "75%" in text and "20%" in text and "2026-09-30" in text
    assert check_html(text) is None
    button = first.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert button == ProjectAction(action="report", project_id=ids["project"]).pack()

    # 1–7 October are the National Day holidays: 8 October is only the first working day since
    for moment in (local(2026, 10, 1, 10, 0), local(2026, 10, 8, 10, 0), local(2026, 10, 9, 9, 55)):
        assert await alerts(sessionmaker, settings, moment) == 0
    assert await alerts(sessionmaker, settings, local(2026, 10, 9, 10, 0)) == 1
    assert (await outbox(sessionmaker))[-1].person_id == ids["county_leader"]
    leader_text = (await outbox(sessionmaker))[-1].payload["text"]
    assert "第 2 级提醒" in leader_text and "县区联络员" in leader_text and check_html(leader_text) is None

    # 10 October is a make-up working day: 3 working days after 9 October is 13 October
    for moment in (local(2026, 10, 10, 10, 0), local(2026, 10, 12, 10, 0), local(2026, 10, 13, 9, 0)):
        assert await alerts(sessionmaker, settings, moment) == 0
    assert await alerts(sessionmaker, settings, local(2026, 10, 13, 10, 0)) == 1
    for day in range(13, 27):  # up to October's deadline (the 25th is a Sunday: Monday 26th)
        assert await alerts(sessionmaker, settings, local(2026, 10, day, 11, 0)) == 0

    sent = await outbox(sessionmaker)
    assert [(o.person_id, o.key.rsplit(":", 1)[1]) for o in sent] == [
        (ids["contact"], "1"), (ids["county_leader"], "2"), (ids["leader"], "3")
    ]
    [problem] = await problems(sessionmaker)
    assert problem.step == 3 and problem.closed_at is None
    assert problem.detail["notified"] == [ids["contact"], ids["county_leader"], ids["leader"]]


async def test_a_report_that_makes_up_ground_closes_the_problem_and_tells_those_alerted(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await ledger(sessionmaker)
    await alerts(sessionmaker, settings, local(2026, 9, 30, 10, 0))
    await alerts(sessionmaker, settings, local(2026, 10, 9, 10, 0))  # the county leader hears too
    async with sessionmaker() as s:
        project = await s.get_one(Project, ids["project"])
        await save_report(s, project, ReportInput(progress=78, text="主体完工"), person_id=ids["contact"],
                          now=local(2026, 10, 9, 15, 0), tz=SH)
    assert await alerts(sessionmaker, settings, local(2026, 10, 9, 15, 5)) == 2
    assert await alerts(sessionmaker, settings, local(2026, 10, 9, 15, 10)) == 0
    [problem] = await problems(sessionmaker)
    assert problem.closed_at == local(2026, 10, 9, 15, 5)
    resolved = [o for o in await outbox(sessionmaker) if o.kind == "resolved"]
    assert {o.person_id for o in resolved} == {ids["contact"], ids["county_leader"]}  # not the city: never alerted
    assert {o.key for o in resolved} == {f"resolved:{ids['contact']}:{problem.id}:0",
                                         f"resolved:{ids['county_leader']}:{problem.id}:0"}
    assert "已解除" in resolved[0].payload["text"] and "78%" in resolved[0].payload["text"]
    # and the city leader is never asked about it
    assert await alerts(sessionmaker, settings, local(2026, 10, 20, 10, 0)) == 0


async def test_nothing_is_sent_in_quiet_hours_it_waits_for_the_morning(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await ledger(sessionmaker)
    assert await alerts(sessionmaker, settings, local(2026, 9, 30, 22, 30)) == 1
    [row] = await outbox(sessionmaker)
    assert row.not_before == local(2026, 10, 1, 8, 0)
    [problem] = await problems(sessionmaker)
    # the escalation clock starts when the contact can read it
    assert problem.step_at == local(2026, 10, 1, 8, 0)


async def test_a_missed_update_opens_after_the_moved_deadline_and_closes_with_the_next_report(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        on_plan = await factories.project(s, qx, "JZ-001", progress=90)
        await factories.project(s, qx, "JZ-002", status="completed", progress=100)
        contact = await factories.person(s, "contact", qx)
        await s.commit()
        project_id, contact_id = on_plan.id, contact.id
    # 25 September 2026 is the Mid-Autumn holiday: the deadline moves to Monday 28 September
    assert await alerts(sessionmaker, settings, local(2026, 9, 28, 18, 0)) == 0
    assert await alerts(sessionmaker, settings, local(2026, 9, 29, 10, 0)) == 1
    [problem] = await problems(sessionmaker)
    assert (problem.kind, problem.ref, problem.project_id) == ("missed_update", "2026-09", project_id)
    [row] = await outbox(sessionmaker)
    assert "2026-09" in row.payload["text"] and "2026-09-28" in row.payload["text"]
    # October begins: still missing (September's update never came), so nothing closes or reopens
    assert await alerts(sessionmaker, settings, local(2026, 10, 8, 10, 0)) == 0
    async with sessionmaker() as s:
        project = await s.get_one(Project, project_id)
        await save_report(s, project, ReportInput(no_change=True), person_id=contact_id,
                          now=local(2026, 10, 8, 11, 0), tz=SH)
    assert await alerts(sessionmaker, settings, local(2026, 10, 8, 11, 5)) == 1
    [problem] = await problems(sessionmaker)
    assert problem.closed_at is not None
    assert [o.kind for o in await outbox(sessionmaker)] == ["alert", "resolved"]


async def test_an_overdue_milestone_turning_red_tells_those_alerted_once_more(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await ledger(sessionmaker, progress=75, milestones=(("管网铺设", dt.date(2026, 9, 1), None),))
    assert await alerts(sessionmaker, settings, local(2026, 9, 30, 10, 0)) == 1  # 29 days overdue: yellow
    [problem] = await problems(sessionmaker)
    assert (problem.kind, problem.level) == ("milestone", "yellow")
    assert await alerts(sessionmaker, settings, local(2026, 10, 8, 10, 0)) == 1  # 37 days: red
    assert await alerts(sessionmaker, settings, local(2026, 10, 8, 10, 30)) == 0
    rows = await outbox(sessionmaker)
    assert rows[-1].key == f"alert:{ids['contact']}:{problem.id}:red"
    assert "红灯" in rows[-1].payload["text"] and "管网铺设" in rows[-1].payload["text"]
    # turning red does not hold up the escalation: the county leader hears on the 2nd working day
    assert await alerts(sessionmaker, settings, local(2026, 10, 9, 10, 0)) == 1
    # the milestone reached in a report closes it
    async with sessionmaker() as s:
        project = await s.get_one(Project, ids["project"])
        ms = await s.scalar(select(Milestone))
        assert ms is not None
        await save_report(s, project, ReportInput(milestone_ids=(ms.id,)), person_id=ids["contact"],
                          now=local(2026, 10, 9, 16, 0), tz=SH)
    assert await alerts(sessionmaker, settings, local(2026, 10, 9, 16, 5)) == 2
    texts = [o.payload["text"] for o in await outbox(sessionmaker) if o.kind == "resolved"]
    assert all("管网铺设" in t and check_html(t) is None for t in texts)


async def test_red_back_to_yellow_restarts_the_escalation_clock(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await ledger(sessionmaker)  # red on 30 September
    await alerts(sessionmaker, settings, local(2026, 9, 30, 10, 0))
    async with sessionmaker() as s:
        project = await s.get_one(Project, ids["project"])
        await save_report(s, project, ReportInput(progress=60), person_id=ids["contact"],
                          now=local(2026, 10, 8, 9, 0), tz=SH)  # 15 points behind: yellow
    assert await alerts(sessionmaker, settings, local(2026, 10, 8, 9, 30)) == 0
    [problem] = await problems(sessionmaker)
    assert (problem.level, problem.step, problem.step_at) == ("yellow", 1, local(2026, 10, 8, 9, 30))
    assert await alerts(sessionmaker, settings, local(2026, 10, 9, 10, 0)) == 0  # would have been step 2
    assert await alerts(sessionmaker, settings, local(2026, 10, 10, 9, 30)) == 1  # 2 working days after 8 Oct


async def test_english_speakers_get_english_and_user_text_is_escaped(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    async with sessionmaker() as s:
        county = County(name="<b>Qi</b> & Co", sort_order=1)
        s.add(county)
        await s.flush()
        await factories.project(s, county, name="Drains <script>", progress=5)
        s.add(Person(telegram_id=7001, name="Wang", role="contact", county_id=county.id, language="en"))
        await s.commit()
    await alerts(sessionmaker, settings, local(2026, 9, 30, 10, 0))
    texts = [o.payload["text"] for o in await outbox(sessionmaker)]
    assert texts and all(check_html(t) is None for t in texts)
    assert any("Project behind plan" in t and "Drains &lt;script&gt;" in t and "&amp; Co" in t for t in texts)


async def test_two_overlapping_runs_open_and_announce_a_problem_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers: overlapping runs cannot happen there")
    await ledger(sessionmaker)
    moment = local(2026, 9, 30, 10, 0)
    counts = await asyncio.gather(alerts(sessionmaker, settings, moment), alerts(sessionmaker, settings, moment))
    assert sorted(counts) == [0, 1]
    assert len(await outbox(sessionmaker)) == 1 and len(await problems(sessionmaker)) == 1
    later = local(2026, 10, 9, 10, 0)  # step 2 due: both runs try to take it
    counts = await asyncio.gather(alerts(sessionmaker, settings, later), alerts(sessionmaker, settings, later))
    assert sorted(counts) == [0, 1]
    assert [o.key.rsplit(":", 1)[1] for o in await outbox(sessionmaker)] == ["1", "2"]


async def test_alerts_wait_for_a_working_day(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await ledger(sessionmaker)  # red by late September
    # Saturday 3 October 2026 is in the National Day holidays; Saturday 10 October a make-up working day
    assert await alerts(sessionmaker, settings, local(2026, 10, 3, 10, 0)) == 0
    assert await problems(sessionmaker) == []
    assert await alerts(sessionmaker, settings, local(2026, 10, 10, 10, 0)) == 1
    [first] = await outbox(sessionmaker)
    assert first.person_id == ids["contact"]
