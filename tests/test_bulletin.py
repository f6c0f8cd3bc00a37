"""The monthly bulletin (月度通报): a Word file with the digest's figures, written on demand by
`qingshui bulletin` and sent to city leaders and admins with the first digest after the month's deadline."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.lights import LightRules
from bot.services.bulletin import MonthNotBegun, build, write_docx
from bot.services.digest import figures_for, gather, save_snapshot
from bot.services.project_views import project_by_code
from bot.services.reports import ReportInput, save_report
from bot.store.models import Outbox
from jobs.base import JobContext
from jobs.registry import run_job
from tests.test_digest import sample

RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults

SH = ZoneInfo("Asia/Shanghai")
NOV_30 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=SH)  # the first digest after November's deadline (the 25th)
ROOT = Path(__file__).resolve().parent.parent


def text_of(path: Path) -> tuple[str, list[list[list[str]]]]:
    """The document's paragraphs, and each table as rows of cell texts."""
    document = docx.Document(str(path))
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in document.tables]
    return "\n".join(p.text for p in document.paragraphs), tables


def test_the_command_writes_novembers_bulletin_on_the_sample_ledger(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATA_DIR=str(tmp_path / "data"), DEFAULT_LANGUAGE="zh", PYTHONPATH=str(ROOT))

    def qingshui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    assert qingshui("import", "--sample").returncode == 0
    done = qingshui("bulletin", "--month", "2026-11", str(tmp_path / "11月通报.docx"))
    assert done.returncode == 0, done.stderr
    assert "完工率 64%，开工率 93%" in done.stdout

    text, (ranking, flagged) = text_of(tmp_path / "11月通报.docx")
    assert text.startswith("“一泓清水入黄河”工程项目推进情况通报\n（2026年11月）")
    assert "全市共有项目44个，已完工28个，在建13个，未开工3个；完工率64%" in text and "开工率93%" in text
    assert "本期为首期通报" in text  # no digest before November: nothing to compare with
    assert ranking[0][:3] == ["排名", "县区", "项目数"] and len(ranking) == 12  # the 11 counties
    assert sum(int(row[2]) for row in ranking[1:]) == 44
    # at the month's end the sample shows 4 red and 4 yellow, each with its reason
    assert [row[3] for row in flagged[1:]] == ["红灯"] * 4 + ["黄灯"] * 4
    assert all(row[4] for row in flagged[1:])
    assert "五、本月未按时报送进展情况（截止11月25日）" in text and "特此通报。" in text

    wrong = qingshui("bulletin", "--month", "2026-13", str(tmp_path / "x.docx"))
    assert wrong.returncode == 2 and "YYYY-MM" in wrong.stderr
    assert qingshui("bulletin", "--month", "2026-11", str(tmp_path / "x.pdf")).returncode == 2


async def test_the_bulletin_has_the_digests_figures_and_the_change_since_last_month(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    ids = await sample(sessionmaker)
    async with sessionmaker() as s:  # the city as October's last digest stored it: 60 % and 90 %
        data = await gather(s, dt.datetime(2026, 10, 26, 9, 0, tzinfo=SH), SH, RULES)
        await save_snapshot(s, figures_for(data, None, SH), dt.datetime(2026, 10, 26, 9, 0, tzinfo=SH))
        await s.commit()
    async with sessionmaker() as s:
        project = await project_by_code(s, "JZ-011")
        assert project is not None
        await save_report(s, project, ReportInput(progress=project.progress + 20, text="主管网贯通"),
                          person_id=ids["contact"], now=dt.datetime(2026, 11, 21, 10, 0, tzinfo=SH), tz=SH)
    async with sessionmaker() as s:
        bulletin = await build(s, "2026-11", NOV_30, settings)
        digest = figures_for(await gather(s, NOV_30, SH, RULES), None, SH)
    assert bulletin.figures.totals == digest.totals and dict(bulletin.figures.lights) == dict(digest.lights)
    assert [r.name for r in bulletin.figures.ranking] == [r.name for r in digest.ranking]
    assert bulletin.change == {"completion_rate": 0, "start_rate": 0}

    for lang in ("zh", "en"):
        path = write_docx(bulletin, tmp_path / f"bulletin-{lang}.docx", lang)
        text, tables = text_of(path)
        assert len(tables[0]) == 12
        if lang == "zh":
            assert "完工率64%（与上月持平）" in text and "本期为首期通报" not in text
            assert "骏马：祁县，本月形象进度累计提升20个百分点" in text
            assert "祁县：1个项目未报送（JZ-012）；联络员：王联络" in text
        else:
            assert "completion rate 64% (unchanged since last month)" in text and "Fastest (骏马): 祁县" in text


async def test_city_readers_get_the_bulletin_with_the_first_digest_after_the_deadline(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ids = await sample(sessionmaker)

    async def digest(now: dt.datetime) -> None:
        async with sessionmaker() as s:
            await run_job(s, "digest", now.astimezone(dt.UTC), JobContext.from_settings(settings))

    async def bulletins() -> list[Outbox]:
        async with sessionmaker() as s:
            return list(await s.scalars(select(Outbox).where(Outbox.key.like("bulletin:%")).order_by(Outbox.id)))

    await digest(dt.datetime(2026, 11, 23, 9, 0, tzinfo=SH))  # before November's deadline (and weeks after October's)
    assert await bulletins() == []
    await digest(NOV_30)
    sent = await bulletins()
    assert {o.person_id for o in sent} == {ids["leader"], ids["admin"]}  # not the county leader, not contacts
    assert {o.key.split(":")[2] for o in sent} == {"2026-11"} and {o.method for o in sent} == {"document"}
    path = settings.data_dir / sent[0].payload["path"]
    assert path.suffix == ".docx" and "全市共有项目44个" in text_of(path)[0]
    async with sessionmaker() as s:  # it follows the digest's own messages, in reading order
        leader = [o.key for o in await s.scalars(select(Outbox).where(Outbox.person_id == ids["leader"])
                                                 .order_by(Outbox.id))]
    assert leader[-1] == f"bulletin:{ids['leader']}:2026-11:0" and leader[-2].endswith(":ledger")
    await digest(NOV_30 + dt.timedelta(days=7))  # next week's digest: no second bulletin
    assert len(await bulletins()) == 2


async def test_a_month_not_begun_is_refused(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async with sessionmaker() as s:
        with pytest.raises(MonthNotBegun):
            await build(s, "2026-12", NOV_30, settings)
