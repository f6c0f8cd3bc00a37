"""What the chat shows about projects, as plain data for the templates: a county's list (一县一清单),
a project's card and its timeline (一工程一档案). Times are in the city's zone; no Telegram here."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from bot.domain.forecast import Forecast, Reading, forecast
from bot.domain.lights import Assessment, LightRules, MilestoneState, ProjectState, assess
from bot.domain.periods import period_of
from bot.domain.project_code import canonical_code
from bot.domain.report_parser import find_code
from bot.domain.states import ProjectStatus
from bot.ledger.scan import assess_all, load_project_facts
from bot.services.forecasts import readings
from bot.services.reports import COUNTING_KINDS, reported_project_ids, reported_query
from bot.store.models import Change, County, Milestone, Person, Project, Report

_UNDO = aliased(Report, name="undo")  # built once: aliasing a mapped class per query costs ~2 ms


@dataclass(frozen=True)
class ListRow:
    id: int
    code: str
    name: str
    status: str
    progress: int
    light: str
    reported: bool
    needs_report: bool  # completed projects owe no monthly update


@dataclass(frozen=True)
class CountyList:
    """One page of a county's list, with the whole county's counts."""

    county_id: int
    county: str
    period: str
    total: int  # projects in the county
    reported: int  # with this month's update in
    owing: int  # still owing it (not completed, not reported)
    page: int  # clamped into range
    pages: int
    rows: tuple[ListRow, ...]  # this page's


@dataclass(frozen=True)
class ReportView:
    id: int
    at: dt.datetime  # local time
    who: str
    kind: str  # progress | no_change | undo
    period: str
    status: str | None
    progress: int | None
    investment_done: Decimal | None
    text: str
    problems: str
    next_steps: str
    photos: int
    photo_paths: tuple[str, ...]
    undoes_id: int | None
    undone: bool


@dataclass(frozen=True)
class ChangeView:
    field: str  # a ledger field, or milestone:<name>
    old: str | None
    new: str | None

    @property
    def milestone(self) -> str | None:
        return self.field.removeprefix("milestone:") if self.field.startswith("milestone:") else None


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime  # local time
    who: str
    source: str  # progress | no_change | undo (a report) or import | create | … (ledger changes)
    report: ReportView | None
    changes: tuple[ChangeView, ...] = field(default=())


@dataclass(frozen=True)
class Card:
    project: Project
    county: str
    assessment: Assessment
    milestones: tuple[Milestone, ...]
    latest: ReportView | None
    period: str
    reported: bool
    forecast: Forecast | None = None  # None only where no forecast was asked for
    readings: tuple[Reading, ...] = ()  # what the forecast was made from (the cockpit draws them)


def state_of(project: Project) -> ProjectState:
    milestones = tuple(MilestoneState(ms.name, ms.due, ms.done) for ms in project.milestones)
    return ProjectState(project.status, project.progress, project.planned_start, project.planned_finish, milestones)


def code_candidates(raw: str) -> list[str]:
    """The codes a person may mean, best first: the text exactly as typed (it can only differ from the
    canonical form for a code stored before codes were canonical and left alone because it collides
    with another), the canonical form (bot/domain/project_code.py: `hc 003`, `ＨＣ－００３` → HC-003), then the
    chat's short form (`JZ017` → JZ-017), and last the first word alone (`/project JZ-017 please`)."""
    words = raw.split()
    first = canonical_code(words[0]) if len(words) > 1 else None
    return list(dict.fromkeys(c for c in (raw.strip(), canonical_code(raw), find_code(raw), first) if c))


async def project_by_code(session: AsyncSession, raw_code: str) -> Project | None:
    """The project with this code, however it is written (see `code_candidates`), with its milestones
    loaded in the same query (every chat update about a project starts here)."""
    candidates = code_candidates(raw_code)
    if not candidates:
        return None
    query = select(Project).options(joinedload(Project.milestones)).where(Project.code.in_(candidates))
    found = {p.code: p for p in (await session.execute(query)).unique().scalars()}
    return next((found[c] for c in candidates if c in found), None)


async def projects_by_codes(session: AsyncSession, codes: list[str]) -> list[Project]:
    """The projects these codes name (as a message wrote them), in the message's order; unknown ones left out."""
    wanted = list(dict.fromkeys(canonical_code(c) for c in codes))
    found = {p.code: p for p in await session.scalars(select(Project).where(Project.code.in_(wanted)))}
    return [found[c] for c in wanted if c in found]


async def project_by_id(session: AsyncSession, project_id: int) -> Project | None:
    """The project a button names (buttons carry the id: it always fits Telegram's 64 bytes)."""
    query = select(Project).options(joinedload(Project.milestones)).where(Project.id == project_id)
    return (await session.execute(query)).unique().scalar_one_or_none()


async def county_projects(session: AsyncSession, county_id: int) -> list[Project]:
    query = select(Project).where(Project.county_id == county_id).order_by(Project.code)
    return list(await session.scalars(query))


async def counties(session: AsyncSession) -> list[County]:
    return list(await session.scalars(select(County).order_by(County.sort_order, County.name)))


async def county_list(
    session: AsyncSession, county_id: int, *, page: int, size: int, now: dt.datetime, tz: ZoneInfo, rules: LightRules
) -> CountyList:
    """Page `page` of the county's projects by code. Counted and paged in SQL, so that a page reads its
    own projects only, however large the county."""
    county = await session.get_one(County, county_id)
    period = period_of(now, tz)
    # per project, through the (project, period) index: the period's reports of every county are not read
    is_reported = reported_query(period).where(Report.project_id == Project.id).exists()
    in_county = Project.county_id == county_id
    total, reported, owing = (await session.execute(
        select(func.count(), func.count().filter(is_reported),
               func.count().filter(Project.status != ProjectStatus.COMPLETED, ~is_reported))
        .where(in_county)
    )).one()
    page, pages = page_of(total, page, size)
    ids = list(await session.scalars(
        select(Project.id).where(in_county).order_by(Project.code).offset(page * size).limit(size)))
    today = now.astimezone(tz).date()
    facts = await load_project_facts(session, today, ids=ids)
    lights = assess_all(facts, today, rules)
    reported_here = await reported_project_ids(session, period, ids)
    rows = tuple(
        ListRow(
            id=f.id, code=f.code, name=f.name, status=f.status, progress=f.state.progress, light=lights[f.id].light,
            reported=f.id in reported_here, needs_report=f.status != ProjectStatus.COMPLETED,
        )
        for f in facts
    )
    return CountyList(county_id=county.id, county=county.name, period=period, total=total, reported=reported,
                      owing=owing, page=page, pages=pages, rows=rows)


async def _names(session: AsyncSession, person_ids: set[int]) -> dict[int, str]:
    if not person_ids:
        return {}
    rows = await session.execute(select(Person.id, Person.name).where(Person.id.in_(person_ids)))
    return {person_id: name for person_id, name in rows}


def _report_view(report: Report, who: str, undone: set[int], tz: ZoneInfo) -> ReportView:
    return ReportView(
        id=report.id, at=report.created_at.astimezone(tz), who=who, kind=report.kind, period=report.period,
        status=report.status, progress=report.progress, investment_done=report.investment_done,
        text=report.text, problems=report.problems, next_steps=report.next_steps, photos=len(report.photos),
        photo_paths=tuple(p.path for p in report.photos if p.path), undoes_id=report.undoes_id,
        undone=report.id in undone,
    )


async def project_card(
    session: AsyncSession, project: Project, *, now: dt.datetime, tz: ZoneInfo, rules: LightRules,
    saved: tuple[Report, str] | None = None,
) -> Card:
    """`saved`: the report the caller has just saved (or found repeated) and its author's name: it is
    the project's latest and counts for this month, so the card after a report reads nothing more."""
    if inspect(project).expired:  # a rollback (a duplicate report) expired it
        await session.refresh(project)
    unloaded = [name for name in ("milestones", "county") if name in inspect(project).unloaded]
    if unloaded:  # usually loaded already, with the project (project_by_code)
        await session.refresh(project, unloaded)
    today = now.astimezone(tz).date()
    assessment = assess(state_of(project), today, rules)
    period = period_of(now, tz)
    found = (await readings(session, {project.id: project.progress}, tz, ids=[project.id]))[project.id]
    outlook = forecast(status=project.status, planned_start=project.planned_start,
                       planned_finish=project.planned_finish, readings=found, today=today)
    if saved is not None:
        report, who = saved
        return Card(project=project, county=project.county.name, assessment=assessment,
                    milestones=tuple(project.milestones), latest=_report_view(report, who, set(), tz), period=period,
                    reported=report.period == period and report.kind in COUNTING_KINDS, forecast=outlook,
                    readings=tuple(found))
    reported = bool(await reported_project_ids(session, period, [project.id]))
    # the latest report with its author's name and whether it was taken back, in one query
    latest_row = (await session.execute(
        select(Report, Person.name, exists().where(_UNDO.undoes_id == Report.id))
        .outerjoin(Person, Person.id == Report.person_id)
        .where(Report.project_id == project.id, Report.kind != "undo")
        .order_by(Report.created_at.desc(), Report.id.desc()).limit(1)
    )).first()
    latest = None
    if latest_row is not None:
        report, who, undone = latest_row
        latest = _report_view(report, who or "", {report.id} if undone else set(), tz)
    return Card(project=project, county=project.county.name, assessment=assessment,
                milestones=tuple(project.milestones), latest=latest, period=period, reported=reported,
                forecast=outlook, readings=tuple(found))


async def timeline(session: AsyncSession, project: Project, *, tz: ZoneInfo) -> list[TimelineEntry]:
    """Every report and ledger change of the project, newest first; a report carries its changes."""
    reports = list(await session.scalars(select(Report).where(Report.project_id == project.id)))
    changes = list(await session.scalars(select(Change).where(Change.project_id == project.id).order_by(Change.id)))
    names = await _names(session, {r.person_id for r in reports if r.person_id}
                         | {c.person_id for c in changes if c.person_id})
    undone = {r.undoes_id for r in reports if r.kind == "undo" and r.undoes_id}
    by_report: dict[int, list[ChangeView]] = defaultdict(list)
    loose: dict[tuple[dt.datetime, str, int | None], list[ChangeView]] = defaultdict(list)
    for c in changes:
        view = ChangeView(c.field, c.old, c.new)
        if c.report_id is not None:
            by_report[c.report_id].append(view)
        else:
            loose[(c.at, c.source, c.person_id)].append(view)
    entries = [
        TimelineEntry(at=r.created_at.astimezone(tz), who=names.get(r.person_id or 0, ""), source=r.kind,
                      report=_report_view(r, names.get(r.person_id or 0, ""), undone, tz),
                      changes=tuple(by_report.get(r.id, ())))
        for r in reports
    ]
    entries += [
        TimelineEntry(at=at.astimezone(tz), who=names.get(person_id or 0, ""), source=source, report=None,
                      changes=tuple(views))
        for (at, source, person_id), views in loose.items()
    ]
    entries.sort(key=lambda e: (e.at, e.report.id if e.report else 0), reverse=True)
    return entries


def page_of(count: int, page: int, size: int) -> tuple[int, int]:
    """(page clamped into range, number of pages) for `count` items split `size` per page."""
    pages = max(1, -(-count // size))
    return min(max(page, 0), pages - 1), pages
