"""/list's data: one page of a county's projects by code, with the whole county's counts (一县一清单),
counted and paged in the database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.lights import LightRules
from bot.services.project_views import county_list, project_by_code
from bot.services.reports import ReportInput, save_report, undo_report
from tests import factories

TZ = ZoneInfo("Asia/Shanghai")
RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults
NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)


async def test_a_page_of_the_county_with_the_counts_of_all_of_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as s:
        qixian, other = await factories.county(s, "祁县", 1), await factories.county(s, "太谷区", 2)
        for n in range(23):  # JZ-100 … JZ-122; every fifth completed; added in reverse order of code
            code = f"JZ-{122 - n}"
            done = (122 - n) % 5 == 0
            await factories.project(s, qixian, code, status="completed" if done else "started",
                                    progress=100 if done else 40, milestones=(("管网", dt.date(2026, 12, 1), None),))
        await factories.project(s, other, "TG-001")
        contact = await factories.person(s, "contact", qixian)
        await s.commit()
    async with sessionmaker() as s:  # reported: JZ-101, JZ-102 and JZ-105 (completed); JZ-103's report undone
        for code in ("JZ-101", "JZ-102", "JZ-103", "JZ-105"):
            project = await project_by_code(s, code)
            assert project is not None
            data = ReportInput(no_change=True) if project.status == "completed" else ReportInput(progress=45)
            report = await save_report(s, project, data, person_id=contact.id, now=NOW, tz=TZ)
            if code == "JZ-103":
                assert report is not None
                await undo_report(s, report, person_id=contact.id, now=NOW + dt.timedelta(minutes=1), tz=TZ)

    pages = []
    async with sessionmaker() as s:
        for page in (0, 1, 2, 7):  # 7: past the end, shown as the last page
            pages.append(await county_list(s, qixian.id, page=page, size=10, now=NOW, tz=TZ, rules=RULES))

    first, second, last, beyond = pages
    assert (first.total, first.reported, first.owing, first.pages) == (23, 3, 16, 3)  # 18 started, 2 of them reported
    assert [r.code for r in first.rows] == [f"JZ-{n}" for n in range(100, 110)]
    assert [r.code for r in second.rows] == [f"JZ-{n}" for n in range(110, 120)]
    assert [r.code for r in last.rows] == ["JZ-120", "JZ-121", "JZ-122"] and last.page == 2
    assert beyond.page == 2 and beyond.rows == last.rows
    by_code = {r.code: r for r in first.rows}
    assert [c for c, r in by_code.items() if r.reported] == ["JZ-101", "JZ-102", "JZ-105"]
    assert not by_code["JZ-105"].needs_report and by_code["JZ-103"].needs_report
    assert by_code["JZ-101"].progress == 45 and by_code["JZ-100"].status == "completed"


async def test_an_empty_county_is_one_empty_page(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        county = await factories.county(s, "和顺县", 3)
        await s.commit()
        listing = await county_list(s, county.id, page=3, size=10, now=NOW, tz=TZ, rules=RULES)
    assert (listing.total, listing.reported, listing.owing, listing.page, listing.pages, listing.rows) == \
        (0, 0, 0, 0, 1, ())
