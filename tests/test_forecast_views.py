"""The forecast where people read it: on the project card and in the weekly digest, from the dossier's
readings (the ledger's at creation, then each report that counts)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram.html_check import html_to_text
from bot.domain.forecast import forecast
from bot.domain.lights import LightRules
from bot.ledger.scan import load_project_facts
from bot.services.forecasts import forecasts, readings
from bot.services.project_views import project_by_code, project_card
from bot.services.reports import ReportInput, save_report, undo_report
from bot.store.models import Change, Outbox, Person, Report
from bot.texts import render
from jobs.base import JobContext
from jobs.registry import run_job
from tests import factories

RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults

SH = ZoneInfo("Asia/Shanghai")
START, FINISH = dt.date(2026, 1, 1), dt.date(2026, 4, 11)  # a 100-day plan


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=SH).astimezone(dt.UTC)


async def ledger(sm: async_sessionmaker[AsyncSession]) -> int:
    """JZ-017 late (5 % on the import of 2026-01-21) and JZ-018 on plan (20 %), each as an import creates it."""
    async with sm() as s:
        county = await factories.county(s, "祁县", 1)
        late = await factories.project(s, county, "JZ-017", progress=5, planned_start=START, planned_finish=FINISH)
        fine = await factories.project(s, county, "JZ-018", name="祁县污水处理厂提标改造工程", progress=20,
                                       planned_start=START, planned_finish=FINISH)
        for p in (late, fine):
            s.add(Change(project_id=p.id, at=at(dt.date(2026, 1, 21)), source="create", field="name", new=p.name))
        contact = await factories.person(s, "contact", county, name="王联络")
        s.add(Person(telegram_id=9001, name="张市长", role="leader"))
        await s.commit()
        return contact.id


async def report(sm: async_sessionmaker[AsyncSession], code: str, progress: int, day: dt.date, who: int) -> None:
    async with sm() as s:
        project = await project_by_code(s, code)
        assert project is not None
        await save_report(s, project, ReportInput(progress=progress), person_id=who, now=at(day), tz=SH)


async def card_text(sm: async_sessionmaker[AsyncSession], code: str, day: dt.date, lang: str = "zh") -> str:
    async with sm() as s:
        project = await project_by_code(s, code)
        assert project is not None
        card = await project_card(s, project, now=at(day, 12), tz=SH, rules=RULES)
        return html_to_text(render(lang, "project.card", card=card))


async def test_the_card_forecasts_the_finish_from_the_import_and_the_report(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    contact = await ledger(sessionmaker)
    day_50 = dt.date(2026, 2, 20)
    assert "报告次数不足，暂无法预测" in await card_text(sessionmaker, "JZ-017", day_50)  # the import alone

    # 25 % on day 50 of 100: SPI(t) 0.5, 200 days → 2026-07-20; 75 points in 50 days ≈ 45.7 a month,
    # 20 points in the 30 days since the import ≈ 20.3 a month
    await report(sessionmaker, "JZ-017", 25, day_50, contact)
    text = await card_text(sessionmaker, "JZ-017", day_50)
    assert "📈 预测完工：2026-07-20（晚于计划 100 天）· 进度绩效 SPI(t) 0.50" in text
    assert "按期完工需每月 45.7 个百分点（此前每月 20.3）" in text
    english = await card_text(sessionmaker, "JZ-017", day_50, "en")
    assert "Forecast finish: 2026-07-20 (100 days late) · SPI(t) 0.50" in english

    # 本月无变化 a week later is a reading too: still 25 %, now on day 57 → later again (228 days → 2026-08-17)
    async with sessionmaker() as s:
        project = await project_by_code(s, "JZ-017")
        assert project is not None
        await save_report(s, project, ReportInput(no_change=True), person_id=contact, now=at(dt.date(2026, 2, 27)),
                          tz=SH)
    assert "预测完工：2026-08-17（晚于计划 128 天）" in await card_text(sessionmaker, "JZ-017", dt.date(2026, 2, 27))


async def test_an_undone_report_is_not_a_reading(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    contact = await ledger(sessionmaker)
    day = dt.date(2026, 2, 20)
    await report(sessionmaker, "JZ-018", 50, day, contact)
    assert "预测完工：2026-04-11（与计划一致）" in await card_text(sessionmaker, "JZ-018", day)
    async with sessionmaker() as s:
        project = await project_by_code(s, "JZ-018")
        assert project is not None
        saved = (await project_card(s, project, now=at(day, 11), tz=SH, rules=RULES)).latest
        assert saved is not None
        await undo_report(s, await s.get_one(Report, saved.id), person_id=contact, now=at(day, 11), tz=SH)
    assert "报告次数不足" in await card_text(sessionmaker, "JZ-018", day)


async def test_the_digest_lists_projects_forecast_over_a_month_late(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    contact = await ledger(sessionmaker)
    await report(sessionmaker, "JZ-017", 25, dt.date(2026, 2, 20), contact)
    await report(sessionmaker, "JZ-018", 50, dt.date(2026, 2, 20), contact)
    monday = dt.datetime(2026, 2, 23, 9, 0, tzinfo=SH)
    async with sessionmaker() as s:
        assert (await run_job(s, "digest", monday.astimezone(dt.UTC), JobContext.from_settings(settings))).queued
    async with sessionmaker() as s:
        texts = [o.payload["text"] for o in await s.scalars(select(Outbox).order_by(Outbox.id))
                 if o.method == "message"]
    digest = html_to_text("\n".join(texts))
    section = digest.split("预测晚于计划完工一个月以上")[1].split("本月尚未报送进展")[0]
    assert section.startswith("（1）")
    assert "JZ-017" in section and "预测 2026-07-20 完工，晚于计划 100 天" in section
    assert "JZ-018" not in section  # 50 % on day 50: on plan


async def test_many_projects_at_once_forecast_as_each_one_alone(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The digest and the county list read the readings' bounds in a few GROUP BYs; the card reads every reading:
    the forecasts agree, through reports, 本月无变化 and an undo."""
    contact = await ledger(sessionmaker)
    await report(sessionmaker, "JZ-017", 15, dt.date(2026, 2, 10), contact)
    await report(sessionmaker, "JZ-017", 25, dt.date(2026, 2, 20), contact)
    await report(sessionmaker, "JZ-018", 50, dt.date(2026, 2, 20), contact)
    async with sessionmaker() as s:
        project = await project_by_code(s, "JZ-018")
        assert project is not None
        await save_report(s, project, ReportInput(no_change=True), person_id=contact, now=at(dt.date(2026, 3, 1)),
                          tz=SH)
        last = await save_report(s, project, ReportInput(progress=60), person_id=contact, now=at(dt.date(2026, 3, 2)),
                                 tz=SH)
        assert last is not None
        await undo_report(s, last, person_id=contact, now=at(dt.date(2026, 3, 2), 11), tz=SH)
    today = dt.date(2026, 3, 3)
    async with sessionmaker() as s:
        facts = await load_project_facts(s, today)
        bulk = await forecasts(s, facts, today, SH, every=True)
        for fact in facts:
            alone = (await readings(s, {fact.id: fact.state.progress}, SH, ids=[fact.id]))[fact.id]
            assert bulk[fact.id] == forecast(status=fact.status, planned_start=fact.state.planned_start,
                                             planned_finish=fact.state.planned_finish, readings=alone, today=today)
    assert {f.kind for f in bulk.values()} == {"forecast"}
