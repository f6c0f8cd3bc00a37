"""The monthly bulletin (月度通报): a .docx in the form of a government circular, with the figures of the
digest (bot.services.digest) for the city at the month's end, or now when the month is not over yet
(README "Bulletin").

"Since last month" compares with the city's figures as the latest digest before the month began
stored them (table `snapshots`); without one the bulletin says it is the first. It is sent with the
first digest after the month's deadline (jobs/digest.py), written on demand by `qingshui bulletin`, and
downloaded from the cockpit. python-docx is imported when a bulletin is written, not with this module."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.cycle import cycle_for
from bot.domain.lights import LightRules
from bot.domain.periods import add_months, at_local, parse_period, period_of, previous_period
from bot.services.digest import CITY, Figures, figures_for, gather
from bot.store.models import Snapshot
from bot.texts import render

TITLE_FONT, HEADING_FONT, BODY_FONT = "方正小标宋简体", "黑体", "仿宋_GB2312"  # the circular's usual faces
TITLE_PT, HEADING_PT, BODY_PT, TABLE_PT = 22, 16, 16, 10.5


@dataclass(frozen=True)
class Bulletin:
    month: str
    moment: dt.datetime  # the figures' moment: the month's last instant, or now
    figures: Figures  # the city's
    deadline: dt.date
    previous: Mapping[str, Any] | None  # the city's figures before the month began

    @property
    def change(self) -> dict[str, int | None]:
        keys = ("completion_rate", "start_rate")
        if self.previous is None:
            return dict.fromkeys(keys)
        totals = self.figures.totals
        now = {"completion_rate": totals.completion_rate, "start_rate": totals.start_rate}
        return {k: now[k] - int(self.previous.get(k, 0)) for k in keys}


class MonthNotBegun(ValueError):
    """A bulletin for a month that has not begun yet."""


def month_end(month: str, tz: ZoneInfo) -> dt.datetime:
    """The last instant of `month` in the city (aware, UTC)."""
    following = add_months(parse_period(month), 1)
    return at_local(following, dt.time(0), tz) - dt.timedelta(microseconds=1)


def due_month(now: dt.datetime, settings: Any) -> str:
    """The latest month whose update deadline has passed at `now`: the one a digest sends the bulletin of."""
    period = period_of(now, settings.tz)
    deadline = cycle_for(period, settings).deadline
    return period if now.astimezone(settings.tz).date() > deadline else previous_period(period)


async def _previous(session: AsyncSession, month: str) -> Mapping[str, Any] | None:
    before = parse_period(month) - dt.timedelta(days=1)
    return await session.scalar(
        select(Snapshot.figures).where(Snapshot.scope == CITY, Snapshot.taken_on <= before)
        .order_by(Snapshot.taken_on.desc()).limit(1)
    )


async def build(session: AsyncSession, month: str, now: dt.datetime, settings: Any) -> Bulletin:
    """The bulletin's figures for `month` (YYYY-MM); MonthNotBegun for a month after `now`'s."""
    tz: ZoneInfo = settings.tz
    if parse_period(month) > parse_period(period_of(now, tz)):
        raise MonthNotBegun(month)
    moment = min(now, month_end(month, tz))
    data = await gather(session, moment, tz, LightRules.from_settings(settings))
    return Bulletin(month=month, moment=moment, figures=figures_for(data, None, tz),
                    deadline=cycle_for(month, settings).deadline, previous=await _previous(session, month))


def write_docx(bulletin: Bulletin, path: Path, lang: str) -> Path:
    """Write the bulletin to `path` (.docx); returns it. Synchronous: run it in a thread from async code."""
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Pt

    def t(name: str, **values: Any) -> str:
        return render(lang, f"bulletin.{name}", **values)

    def face(run: Any, font: str, size: float, *, bold: bool = False) -> None:
        run.font.name, run.font.size, run.font.bold = font, Pt(size), bold
        run.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), font)  # CJK text takes this face

    def paragraph(text: str, font: str = BODY_FONT, size: float = BODY_PT, *, bold: bool = False,
                  center: bool = False, indent: bool = False) -> None:
        p = document.add_paragraph()
        if center:
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        if indent:
            p.paragraph_format.first_line_indent = Pt(size * 2)  # 首行缩进两字
        face(p.add_run(text), font, size, bold=bold)

    def table(header: str, rows: list[list[str]]) -> None:
        grid = document.add_table(rows=1, cols=len(header.split("|")))
        grid.style = "Table Grid"
        grid.alignment = WD_TABLE_ALIGNMENT.CENTER
        for cell, text in zip(grid.rows[0].cells, header.split("|"), strict=True):
            face(cell.paragraphs[0].add_run(text), HEADING_FONT, TABLE_PT, bold=True)
        for row in rows:
            cells = grid.add_row().cells
            for cell, text in zip(cells, row, strict=True):
                face(cell.paragraphs[0].add_run(text), BODY_FONT, TABLE_PT)

    f, day = bulletin.figures, bulletin.figures.today
    document = Document()
    paragraph(t("title"), TITLE_FONT, TITLE_PT, center=True)
    paragraph(t("month_line", month=bulletin.month), BODY_FONT, BODY_PT, center=True)
    paragraph(t("issued", day=day), BODY_FONT, TABLE_PT + 1, center=True)
    paragraph(t("intro", month=bulletin.month, day=day), indent=True)

    paragraph(t("h_overall"), HEADING_FONT, HEADING_PT)
    paragraph(t("overall", f=f, change=bulletin.change), indent=True)

    paragraph(t("h_ranking"), HEADING_FONT, HEADING_PT)
    table(t("ranking_header"), [
        [str(rank), r.name, str(r.totals.total), str(r.totals.completed), str(r.totals.started),
         f"{r.completion_rate}%", f"{r.start_rate}%", str(r.lights["red"]), str(r.lights["yellow"]), str(r.missing)]
        for rank, r in enumerate(f.ranking, 1)
    ])

    paragraph(t("h_flagged"), HEADING_FONT, HEADING_PT)
    flagged = [*f.red, *f.yellow]
    if flagged:
        table(t("flagged_header"), [[p.code, p.name, p.county, t("light", code=p.level),
                                     html.unescape(t("reasons", p=p))]  # the reasons are alerts.html's, escaped
                                    for p in flagged])
    else:
        paragraph(t("none_flagged"), indent=True)

    paragraph(t("h_late"), HEADING_FONT, HEADING_PT)
    for line in f.late or [None]:
        paragraph(t("late_line", p=line) if line else t("none_late"), indent=True)

    paragraph(t("h_missing", deadline=bulletin.deadline), HEADING_FONT, HEADING_PT)
    for missing in f.missing or [None]:
        paragraph(t("missing_line", m=missing) if missing else t("none_missing"), indent=True)

    paragraph(t("h_horses"), HEADING_FONT, HEADING_PT)
    paragraph(t("horses", f=f), indent=True)
    paragraph(t("closing"), indent=True)

    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


__all__ = ["Bulletin", "MonthNotBegun", "build", "due_month", "month_end", "write_docx"]
