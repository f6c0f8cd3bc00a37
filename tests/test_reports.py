"""Saving a report writes the report, the ledger and the dossier together; undo restores; redelivery is once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.reports import (
    PhotoInput,
    ReportInput,
    ReportRejected,
    last_undoable,
    needs_confirmation,
    reported_project_ids,
    save_report,
    undo_report,
)
from bot.store.models import Change, Milestone, Project, Report
from tests import factories

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)  # 10:00 in Jinzhong


async def test_a_progress_report_updates_ledger_and_dossier(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        p = await factories.project(s, qx, milestones=(("管网铺设", dt.date(2026, 10, 1), None),))
        who = await factories.person(s, county_row=qx)
        await s.commit()
        ms = await s.scalar(select(Milestone))
        assert ms is not None
        report = await save_report(
            s, p, ReportInput(progress=80, milestone_ids=(ms.id,), text="管网铺设完成"),
            person_id=who.id, now=NOW, tz=SH, update_id=77,
        )
        assert report is not None and report.period == "2026-11"
    async with sessionmaker() as s:
        p2 = await s.scalar(select(Project))
        assert p2 is not None and (p2.progress, p2.status) == (80, "started")
        fields = set(await s.scalars(select(Change.field)))
        assert fields == {"progress", "milestone:管网铺设"}
        assert (await s.scalar(select(Milestone.done))) == dt.date(2026, 11, 20)
        assert await reported_project_ids(s, "2026-11") == {p2.id}
        # the same Telegram update delivered again is applied once
        again = await save_report(s, p2, ReportInput(progress=90), person_id=who.id, now=NOW, tz=SH, update_id=77)
        assert again is None
        assert await s.scalar(select(func.count()).select_from(Report)) == 1


async def test_completion_sets_100_and_actual_finish(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        p = await factories.project(s, qx)
        await save_report(s, p, ReportInput(status="completed"), person_id=None, now=NOW, tz=SH)
        assert (p.status, p.progress, p.actual_finish) == ("completed", 100, dt.date(2026, 11, 20))


async def test_contradictions_are_rejected_and_backwards_needs_confirmation(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        p = await factories.project(s, qx, progress=60)
        with pytest.raises(ReportRejected) as err:
            await save_report(s, p, ReportInput(status="completed", progress=70), person_id=None, now=NOW, tz=SH)
        assert err.value.code == "completed_needs_100"
        assert needs_confirmation(p, ReportInput(progress=40)) == ["progress_backwards"]
        assert needs_confirmation(p, ReportInput(progress=70)) == []


async def test_undo_restores_the_ledger_and_keeps_both_in_the_dossier(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        p = await factories.project(s, qx, progress=50)
        who = await factories.person(s, county_row=qx)
        await s.commit()
        await save_report(s, p, ReportInput(progress=80), person_id=who.id, now=NOW, tz=SH)
        last = await last_undoable(s, who.id, now=NOW + dt.timedelta(minutes=29), window_minutes=30)
        assert last is not None
        assert await last_undoable(s, who.id, now=NOW + dt.timedelta(minutes=31), window_minutes=30) is None
        await undo_report(s, last, person_id=who.id, now=NOW + dt.timedelta(minutes=29), tz=SH)
    async with sessionmaker() as s:
        p2 = await s.scalar(select(Project))
        assert p2 is not None and p2.progress == 50
        kinds = list(await s.scalars(select(Report.kind).order_by(Report.id)))
        assert kinds == ["progress", "undo"]
        assert await reported_project_ids(s, "2026-11") == set()  # an undone report is not this month's update
        sources = list(await s.scalars(select(Change.source).order_by(Change.id)))
        assert sources == ["report", "undo"]


async def test_undo_refused_when_someone_reported_later(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        p = await factories.project(s, qx, progress=50)
        a = await factories.person(s, county_row=qx, telegram_id=1)
        b = await factories.person(s, county_row=qx, telegram_id=2)
        first = await save_report(s, p, ReportInput(progress=60), person_id=a.id, now=NOW, tz=SH)
        await save_report(s, p, ReportInput(progress=70), person_id=b.id, now=NOW, tz=SH)
        assert first is not None
        with pytest.raises(ReportRejected) as err:
            await undo_report(s, first, person_id=a.id, now=NOW, tz=SH)
        assert err.value.code == "superseded"


async def test_a_resend_of_the_same_report_counts_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The service died between saving and answering, so no confirmation came back and the contact
    sends the same words again: the earlier report is the answer and nothing is written twice.
    Anything new in it (words, a photo, another person, another month, after an undo) is a report."""
    later = dt.timedelta(minutes=5)
    async with sessionmaker() as s:
        qx = await factories.county(s)
        p = await factories.project(s, qx, progress=50, milestones=(("管网铺设", dt.date(2026, 10, 1), None),))
        who = await factories.person(s, county_row=qx, telegram_id=1)
        other = await factories.person(s, county_row=qx, telegram_id=2)
        await s.commit()
        ms = await s.scalar(select(Milestone))
        assert ms is not None
        photo = PhotoInput("file-1", "unique-1", "photos/1.jpg")
        first = await save_report(s, p, ReportInput(progress=80, milestone_ids=(ms.id,), text="管网铺设完成",
                                                    photos=(photo,)), person_id=who.id, now=NOW, tz=SH, update_id=1)
        # the milestone is reached now, so the resend no longer names it; Telegram gives the photo a new file_id
        resend = ReportInput(progress=80, text="管网铺设完成", photos=(PhotoInput("file-1b", "unique-1"),))
        again = await save_report(s, p, resend, person_id=who.id, now=NOW + later, tz=SH, update_id=2)
        assert first is not None and again is not None and again.id == first.id
        assert await s.scalar(select(func.count()).select_from(Report)) == 1
        assert await s.scalar(select(func.count()).select_from(Change)) == 2  # progress and the milestone, once

        def saved(data: ReportInput, person_id: int, now: dt.datetime) -> object:
            return save_report(s, p, data, person_id=person_id, now=now, tz=SH)

        await saved(ReportInput(progress=80, text="泵站开挖"), who.id, NOW + later)  # other words
        await saved(ReportInput(progress=80, text="泵站开挖", photos=(PhotoInput("f2", "unique-2"),)), who.id,
                    NOW + later)  # a new photo
        await saved(ReportInput(progress=80, text="泵站开挖"), other.id, NOW + later)  # someone else
        december = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
        await saved(ReportInput(progress=80, text="泵站开挖"), other.id, december)  # next month's update
        assert await s.scalar(select(func.count()).select_from(Report)) == 5
        undone = await last_undoable(s, other.id, now=december, window_minutes=30)
        assert undone is not None
        await undo_report(s, undone, person_id=other.id, now=december, tz=SH)
        await saved(ReportInput(progress=80, text="泵站开挖"), other.id, december)  # sent again after the undo
        assert await s.scalar(select(func.count()).select_from(Report).where(Report.kind == "progress")) == 6
