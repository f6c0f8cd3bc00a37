"""A weekly digest whose chart or workbook cannot be built still reaches every reader with its text, and
the administrators hear about it once; odd county names build both without trouble."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import jobs.digest
from bot.config import Settings
from bot.demo.fake_telegram.html_check import html_to_text
from tests import factories
from tests.test_digest import MONDAY, digest, rows, sample, text_of


def broken(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("no space left on device")


@pytest.mark.parametrize("part", ["county_chart", "export_ledger", "both"])
async def test_a_chart_or_workbook_that_fails_leaves_the_text_and_tells_the_admins_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, part: str,
) -> None:
    ids = await sample(sessionmaker)
    for name in (["county_chart", "export_ledger"] if part == "both" else [part]):
        monkeypatch.setattr(jobs.digest, name, broken)
    with caplog.at_level(logging.ERROR, logger="jobs.digest"):
        assert await digest(sessionmaker, settings, MONDAY) > 0
    assert "no space left on device" in caplog.text  # logged with its traceback
    assert all(r.exc_info for r in caplog.records if r.name == "jobs.digest")
    for reader in ("leader", "county_leader", "admin"):
        mine = await rows(sessionmaker, ids[reader])
        assert "清水周报" in text_of(mine), reader  # the text went to every reader
        steps = {o.key.rsplit(":", 1)[1] for o in mine if o.key.startswith("digest:")}  # not the bulletin
        assert ("chart" in steps) == (part == "export_ledger")
        assert ("ledger" in steps) == (part == "county_chart")
    notices = [o for o in await rows(sessionmaker) if o.key.startswith("digest_failed:")]
    assert [o.person_id for o in notices] == [ids["admin"]]
    said = html_to_text(notices[0].payload["text"])
    assert "周报正文已照常发给每位领导" in said and "全市" in said and "祁县" in said
    assert ("图表" in said) == (part != "export_ledger") and ("台账工作簿" in said) == (part != "county_chart")

    # a later run the same week (a reader invited on Wednesday) does not tell the admins again
    async with sessionmaker() as s:
        await factories.person(s, "leader", None, telegram_id=9010, name="新领导")
        await s.commit()
    assert await digest(sessionmaker, settings, MONDAY) > 0
    assert len([o for o in await rows(sessionmaker) if o.key.startswith("digest_failed:")]) == 1


async def test_odd_county_names_still_give_a_chart_and_a_workbook(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    async with sessionmaker() as s:
        for order, name in enumerate(("'祁县'", "🌊" * 20, "a/b", "$x^2$", "a$b$c", "$\\notacommand$"), 1):
            county = await factories.county(s, name, order)
            await factories.project(s, county, f"ODD-{order}")
        await factories.person(s, "leader", None, telegram_id=9001, name="张市长")
        await s.commit()
    # the text, the chart, the workbook, and October's bulletin (the first digest after its deadline)
    assert await digest(sessionmaker, settings, MONDAY) == 4
    methods = [o.method for o in await rows(sessionmaker) if o.key.startswith("digest:")]
    assert methods == ["message", "photo", "document"]
