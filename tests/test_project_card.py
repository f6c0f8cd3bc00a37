"""The project card after a report: what a contact sees once their report is saved, or found to be a
duplicate of one already saved (the same Telegram update handled twice, e.g. by two instances)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.lights import LightRules
from bot.services.project_views import project_by_code, project_card
from bot.services.reports import PhotoInput, ReportInput, save_report
from tests import factories

TZ = ZoneInfo("Asia/Shanghai")
RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults
NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)


async def test_card_after_a_duplicate_update_shows_the_saved_report(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as s:
        county = await factories.county(s, "祁县", 1)
        await factories.project(s, county, "JZ-017", progress=30,
                                milestones=(("管网铺设", dt.date(2026, 12, 1), None),))
        contact = await factories.person(s, "contact", county, name="王联络")
        await s.commit()
    async with sessionmaker() as s:
        project = await project_by_code(s, "jz017")
        assert project is not None
        saved = await save_report(s, project, ReportInput(progress=40, text="管网铺设过半"), person_id=contact.id,
                                  now=NOW, tz=TZ, update_id=77)
        assert saved is not None

    async with sessionmaker() as s:  # the same update handled again, saying something else by then
        project = await project_by_code(s, "JZ-017")
        assert project is not None
        again = await save_report(s, project, ReportInput(progress=55), person_id=contact.id, now=NOW, tz=TZ,
                                  update_id=77)
        assert again is None
        card = await project_card(s, project, now=NOW, tz=TZ, rules=RULES)

    assert card.project.progress == 40 and card.county == "祁县"
    assert [m.name for m in card.milestones] == ["管网铺设"]
    assert card.reported
    assert card.latest is not None
    latest = card.latest
    assert (latest.progress, latest.who, latest.text, latest.undone) == (40, "王联络", "管网铺设过半", False)


async def test_card_from_the_saved_report_is_the_card_read_back(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """After a save the card is built from the report in hand (no reads); it must say what a fresh read says:
    a new report with photos, then the same report sent again (found as a repeat, the earlier one shown)."""
    async with sessionmaker() as s:
        county = await factories.county(s, "祁县", 1)
        await factories.project(s, county, "JZ-017", progress=30)
        contact = await factories.person(s, "contact", county, name="王联络")
        await s.commit()
    data = ReportInput(progress=45, text="泵站基础浇筑", photos=(PhotoInput("f1", "u1", "photos/a.jpg"),
                                                                 PhotoInput("f2", "u2", "")))
    for attempt in ("new", "repeat"):
        async with sessionmaker() as s:
            project = await project_by_code(s, "JZ-017")
            assert project is not None
            report = await save_report(s, project, data, person_id=contact.id, now=NOW, tz=TZ)
            assert report is not None
            held = await project_card(s, project, now=NOW, tz=TZ, rules=RULES, saved=(report, "王联络"))
        async with sessionmaker() as s:
            project = await project_by_code(s, "JZ-017")
            assert project is not None
            read = await project_card(s, project, now=NOW, tz=TZ, rules=RULES)
        assert held.latest == read.latest, attempt
        assert (held.reported, held.period, held.assessment) == (read.reported, read.period, read.assessment)
        assert held.latest is not None and held.latest.photos == 2 and held.latest.photo_paths == ("photos/a.jpg",)
