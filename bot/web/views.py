"""What the cockpit's pages show, as plain data: built from the digest's figures (bot.services.digest),
the lights of bot.ledger.scan, the card and timeline of bot.services.project_views and the forecasts of
bot.services.forecasts, so a page never counts a rate or a light a second way."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.forecast import Forecast, Reading
from bot.domain.lights import LightRules
from bot.domain.periods import add_months, period_of, period_of_date
from bot.domain.rates import Totals
from bot.ledger.queries import county_figures
from bot.ledger.scan import assess_all, collector_paused, load_project_facts
from bot.services.digest import (
    CITY,
    Figures,
    LedgerData,
    ProjectLine,
    figures_for,
    month_start,
    previous_snapshots,
    progress_gained,
)
from bot.services.forecasts import forecasts
from bot.services.project_views import Card, TimelineEntry, project_card, timeline
from bot.services.reports import reported_project_ids
from bot.store.models import County, Photo, Project, Report, Snapshot

TREND_MONTHS = 36  # the trend goes back at most this far
FLAGGED_SHOWN = 50  # red and yellow projects listed on the city page; the rest through each county's filter


@dataclass(frozen=True)
class TrendPoint:
    month: str
    totals: Totals  # the city at the month's end, from the actual start and finish dates


@dataclass(frozen=True)
class CityView:
    figures: Figures  # the digest's, for the city
    last_month: Mapping[str, Any] | None  # the city's snapshot about a month ago
    trend: list[TrendPoint]

    @cached_property
    def flagged(self) -> list[ProjectLine]:
        """The red projects, then the yellow, at most FLAGGED_SHOWN of them."""
        red = self.figures.red[:FLAGGED_SHOWN]
        return red + self.figures.yellow[:FLAGGED_SHOWN - len(red)]

    @property
    def flagged_total(self) -> int:
        return len(self.figures.red) + len(self.figures.yellow)

    @property
    def month_change(self) -> dict[str, int | None]:
        keys = ("completion_rate", "start_rate")
        if self.last_month is None:
            return dict.fromkeys(keys)
        t = self.figures.totals
        now = {"completion_rate": t.completion_rate, "start_rate": t.start_rate}
        return {k: now[k] - int(self.last_month.get(k, 0)) for k in keys}


async def _per_month(session: AsyncSession) -> tuple[dict[str, int], dict[str, int]]:
    """How many projects started and finished in each month (`YYYY-MM`), counted in the database in one
    pass over the projects."""
    def month_of(column: Any) -> tuple[Any, Any]:
        return extract("year", column), extract("month", column)

    starts: dict[str, int] = defaultdict(int)
    finishes: dict[str, int] = defaultdict(int)
    rows = await session.execute(
        select(*month_of(Project.actual_start), *month_of(Project.actual_finish), func.count())
        .where(Project.actual_start.is_not(None) | Project.actual_finish.is_not(None))
        .group_by(*month_of(Project.actual_start), *month_of(Project.actual_finish)))
    for start_year, start_month, finish_year, finish_month, n in rows:
        if start_year is not None:
            starts[f"{int(start_year):04d}-{int(start_month):02d}"] += n
        if finish_year is not None:
            finishes[f"{int(finish_year):04d}-{int(finish_month):02d}"] += n
    return starts, finishes


async def _trend(session: AsyncSession, totals: Totals, today: dt.date) -> list[TrendPoint]:
    """The city's rates at each month's end since the first recorded start (at most TREND_MONTHS), from the
    ledger's actual start and finish dates: the current month ends with today's rates."""
    starts, finishes = await _per_month(session)
    if not starts:
        return [TrendPoint(period_of_date(today), totals)]
    first = max(dt.date.fromisoformat(min(starts) + "-01"), add_months(today.replace(day=1), 1 - TREND_MONTHS))
    started = sum(n for month, n in starts.items() if month < period_of_date(first))
    completed = sum(n for month, n in finishes.items() if month < period_of_date(first))
    points = []
    month = first
    while month <= today:
        key = period_of_date(month)
        started, completed = started + starts.get(key, 0), completed + finishes.get(key, 0)
        points.append(TrendPoint(key, Totals(total=totals.total, completed=completed, started=started)))
        month = add_months(month, 1)
    return points


async def city_view(session: AsyncSession, now: dt.datetime, settings: Settings) -> CityView:
    """The city page: the digest's city figures (rates, lights, ranking, 骏马 and 蜗牛, the change since last
    week), the change since about a month ago, and the trend. Reads what the page shows and nothing more
    (no status history, no contacts, no forecasts)."""
    with collector_paused():  # every project read and assessed
        tz = settings.tz
        today = now.astimezone(tz).date()
        period = period_of(now, tz)
        counties = await county_figures(session)
        facts = await load_project_facts(session, today)
        data = LedgerData(
            now=now, period=period, counties=[(c.county_id, c.name) for c in counties],
            county_totals={c.county_id: c.totals for c in counties}, facts=facts,
            assessments=assess_all(facts, today, LightRules.from_settings(settings)),
            reported=frozenset(await reported_project_ids(session, period)),
            gained=await progress_gained(session, month_start(now, tz)),
            status_changes=[], contacts={}, previous=await previous_snapshots(session, today),
        )
        figures = figures_for(data, None, tz)
        last_month = await session.scalar(
            select(Snapshot.figures).where(Snapshot.scope == CITY, Snapshot.taken_on <= add_months(today, -1))
            .order_by(Snapshot.taken_on.desc()).limit(1))
        return CityView(figures=figures, last_month=last_month, trend=await _trend(session, figures.totals, today))


@dataclass(frozen=True)
class CountyRow:
    code: str
    name: str
    status: str
    progress: int
    expected: int | None  # 序时进度
    light: str
    forecast: Forecast
    reported: bool
    needs_report: bool  # completed projects owe no monthly update


@dataclass(frozen=True)
class CountyView:
    county_id: int
    county: str
    period: str
    totals: Totals
    lights: Mapping[str, int]
    owing: int  # unfinished projects without this month's update
    rows: list[CountyRow]  # after the filters
    light_filter: str | None
    missing_only: bool


async def county_view(
    session: AsyncSession, county_id: int, now: dt.datetime, settings: Settings, *, light: str | None = None,
    missing_only: bool = False,
) -> CountyView | None:
    """一县一清单: every project of the county with its light, forecast and this month's update."""
    county = await session.get(County, county_id)
    if county is None:
        return None
    tz = settings.tz
    today, period = now.astimezone(tz).date(), period_of(now, tz)
    facts = await load_project_facts(session, today, county_id)
    lights = assess_all(facts, today, LightRules.from_settings(settings))
    reported = await reported_project_ids(session, period, [f.id for f in facts])
    outlooks = await forecasts(session, facts, today, tz)
    rows = [CountyRow(code=f.code, name=f.name, status=f.status, progress=f.state.progress,
                      expected=lights[f.id].expected, light=lights[f.id].light, forecast=outlooks[f.id],
                      reported=f.id in reported, needs_report=f.status != "completed") for f in facts]
    counts = {"green": 0, "yellow": 0, "red": 0}
    for row in rows:
        counts[row.light] += 1
    owing = sum(1 for r in rows if r.needs_report and not r.reported)
    shown = [r for r in rows if (light is None or r.light == light)
             and (not missing_only or (r.needs_report and not r.reported))]
    totals = Totals(total=len(rows), completed=sum(r.status == "completed" for r in rows),
                    started=sum(r.status in ("started", "completed") for r in rows))
    return CountyView(county_id=county.id, county=county.name, period=period, totals=totals, lights=counts,
                      owing=owing, rows=shown, light_filter=light, missing_only=missing_only)


@dataclass(frozen=True)
class ProjectView:
    card: Card  # with its assessment, milestones and forecast
    entries: list[TimelineEntry]  # newest first
    photos: Mapping[int, list[int]]  # report id → the ids of its photos kept on disk
    readings: list[Reading]
    today: dt.date


async def project_view(session: AsyncSession, project: Project, now: dt.datetime, settings: Settings) -> ProjectView:
    """一工程一档案: the card, every report with its photos, the readings for the plan-against-progress chart."""
    tz = settings.tz
    card = await project_card(session, project, now=now, tz=tz, rules=LightRules.from_settings(settings))
    entries = await timeline(session, project, tz=tz)
    photos: dict[int, list[int]] = defaultdict(list)
    for photo_id, report_id in await session.execute(
        select(Photo.id, Photo.report_id).join(Report, Report.id == Photo.report_id)
        .where(Report.project_id == project.id, Photo.path != "").order_by(Photo.id)
    ):
        photos[report_id].append(photo_id)
    return ProjectView(card=card, entries=entries, photos=dict(photos), readings=list(card.readings),
                       today=now.astimezone(tz).date())


async def photo_of(session: AsyncSession, photo_id: int) -> tuple[Photo, Project] | None:
    """A photo with the project it shows (whose county decides who may see it)."""
    row = (await session.execute(
        select(Photo, Project).join(Report, Report.id == Photo.report_id).join(Project, Project.id == Report.project_id)
        .where(Photo.id == photo_id)
    )).first()
    return (row[0], row[1]) if row is not None else None
