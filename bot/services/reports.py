"""Progress reports: checking, saving (report + ledger + dossier in one transaction), undo, and
which projects have this month's update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.periods import period_of
from bot.domain.states import ProjectStatus
from bot.ledger.dossier import apply_fields, from_text
from bot.store.models import Change, Milestone, Photo, Project, Report

COUNTING_KINDS = ("progress", "no_change")


@dataclass(frozen=True)
class PhotoInput:
    file_id: str
    file_unique_id: str = ""
    path: str = ""


@dataclass(frozen=True)
class ReportInput:
    """What a contact reported; None means 'not mentioned', not 'cleared'."""

    status: ProjectStatus | None = None
    progress: int | None = None
    investment_done: Decimal | None = None
    milestone_ids: tuple[int, ...] = ()
    text: str = ""
    problems: str = ""
    next_steps: str = ""
    no_change: bool = False
    photos: tuple[PhotoInput, ...] = field(default=())


class ReportRejected(ValueError):
    """The report cannot be applied as given; `code` names the template that explains why."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def resolve(project: Project, data: ReportInput) -> tuple[ProjectStatus, int]:
    """The status and progress the ledger will hold after this report."""
    status = ProjectStatus(data.status or project.status)
    progress = project.progress if data.progress is None else data.progress
    if data.status == ProjectStatus.COMPLETED and data.progress is None:
        progress = 100
    if (data.status is None and data.progress is not None and project.status == ProjectStatus.NOT_STARTED
            and progress > 0):
        status = ProjectStatus.STARTED  # reporting progress means work has begun
    if data.status is None and data.progress == 100:
        status = ProjectStatus.COMPLETED
    return status, progress


def check(project: Project, data: ReportInput) -> list[str]:
    """Reasons the report cannot be saved as is (ReportRejected codes); empty when consistent."""
    if data.no_change:
        return []
    problems: list[str] = []
    status, progress = resolve(project, data)
    if not 0 <= progress <= 100:
        problems.append("progress_out_of_range")
    if status == ProjectStatus.COMPLETED and progress != 100:
        problems.append("completed_needs_100")
    if status == ProjectStatus.NOT_STARTED and progress > 0:
        problems.append("not_started_with_progress")
    if data.investment_done is not None and data.investment_done < 0:
        problems.append("negative_investment")
    return problems


def needs_confirmation(project: Project, data: ReportInput) -> list[str]:
    """Changes that are allowed only after the contact confirms them explicitly."""
    if data.no_change:
        return []
    status, progress = resolve(project, data)
    reasons: list[str] = []
    if progress < project.progress:
        reasons.append("progress_backwards")
    if project.status == ProjectStatus.COMPLETED and status != ProjectStatus.COMPLETED:
        reasons.append("reopen_completed")
    elif project.status == ProjectStatus.STARTED and status == ProjectStatus.NOT_STARTED:
        reasons.append("status_backwards")
    return reasons


async def save_report(
    session: AsyncSession,
    project: Project,
    data: ReportInput,
    *,
    person_id: int | None,
    now: dt.datetime,
    tz: ZoneInfo,
    update_id: int | None = None,
) -> Report | None:
    """Write the report, apply it to the ledger and the dossier, and commit.

    Returns None when this Telegram update was already applied (a redelivery), and the earlier
    report when this one only repeats it (see repeat_of): nothing new is written then."""
    problems = check(project, data)
    if problems:
        raise ReportRejected(problems[0])
    earlier = await repeat_of(session, project, data, person_id=person_id, period=period_of(now, tz))
    if earlier is not None:
        return earlier
    today = now.astimezone(tz).date()
    report = Report(
        project_id=project.id,
        person_id=person_id,
        period=period_of(now, tz),
        kind="no_change" if data.no_change else "progress",
        created_at=now,
        text=data.text,
        problems=data.problems,
        next_steps=data.next_steps,
        update_id=update_id,
        milestone_ids=list(data.milestone_ids),
        # set, not loaded: inserted with the report, and the card shown next needs no read for them
        photos=[Photo(file_id=p.file_id, file_unique_id=p.file_unique_id, path=p.path) for p in data.photos],
    )
    if not data.no_change:  # in the INSERT itself, not a second UPDATE after the flush
        report.status, report.progress = resolve(project, data)
        report.investment_done = data.investment_done
    session.add(report)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        if update_id is not None:
            return None
        raise
    if not data.no_change:
        status, progress = resolve(project, data)
        values: dict[str, object] = {"status": status, "progress": progress}
        if data.investment_done is not None:
            values["investment_done"] = data.investment_done
        if status != ProjectStatus.NOT_STARTED and project.actual_start is None:
            values["actual_start"] = today
        if status == ProjectStatus.COMPLETED and project.actual_finish is None:
            values["actual_finish"] = today
        changes = apply_fields(project, values, source="report", at=now, person_id=person_id, report_id=report.id)
        changes += await _reach_milestones(session, project, data.milestone_ids, today, now, person_id, report.id)
        session.add_all(changes)
    await session.commit()
    return report


async def repeat_of(
    session: AsyncSession, project: Project, data: ReportInput, *, person_id: int | None, period: str
) -> Report | None:
    """The report `data` merely repeats, if any: the project's latest report (counting, not undone)
    is this person's, for this month, and says the same — same kind, status, progress, investment,
    words, no milestone or photo it did not already have. A contact who got no confirmation (the
    service died between saving and answering) sends again; that resend must not count twice."""
    if person_id is None:
        return None
    latest = await session.scalar(
        select(Report)
        .where(Report.project_id == project.id, Report.kind.in_(COUNTING_KINDS), _not_undone())
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(1)
    )
    if latest is None or latest.person_id != person_id or latest.period != period:
        return None
    if latest.kind != ("no_change" if data.no_change else "progress"):
        return None
    if (latest.text, latest.problems, latest.next_steps) != (data.text, data.problems, data.next_steps):
        return None
    if not set(data.milestone_ids) <= set(latest.milestone_ids or ()):
        return None
    if not data.no_change:
        status, progress = resolve(project, data)
        if (latest.status, latest.progress, latest.investment_done) != (status, progress, data.investment_done):
            return None
    if data.photos:
        kept = set(await session.scalars(select(Photo.file_unique_id).where(Photo.report_id == latest.id)))
        if any(not photo.file_unique_id or photo.file_unique_id not in kept for photo in data.photos):
            return None
    return latest


async def _reach_milestones(
    session: AsyncSession,
    project: Project,
    milestone_ids: Iterable[int],
    today: dt.date,
    now: dt.datetime,
    person_id: int | None,
    report_id: int,
) -> list[Change]:
    ids = list(milestone_ids)
    if not ids:
        return []
    rows = await session.scalars(
        select(Milestone).where(Milestone.project_id == project.id, Milestone.id.in_(ids), Milestone.done.is_(None))
    )
    changes = []
    for ms in rows:
        ms.done = today
        changes.append(Change(project_id=project.id, at=now, source="report", person_id=person_id,
                              report_id=report_id, field=f"milestone:{ms.name}", old=None, new=today.isoformat()))
    return changes


_UNDO = aliased(Report, name="undo")
# built once: aliasing the mapped class costs ~2 ms, and this is asked on every report saved or shown
_NOT_UNDONE = ~exists().where(and_(_UNDO.undoes_id == Report.id, _UNDO.kind == "undo"))


def _not_undone() -> object:
    return _NOT_UNDONE


def counting() -> ColumnElement[bool]:
    """A report that counts for its month: progress or 本月无变化, and not undone."""
    return and_(Report.kind.in_(COUNTING_KINDS), _NOT_UNDONE)


async def last_undoable(
    session: AsyncSession, person_id: int, *, now: dt.datetime, window_minutes: int
) -> Report | None:
    """The person's latest report if it is still within the undo window and not undone."""
    report = await session.scalar(
        select(Report)
        .where(Report.person_id == person_id, Report.kind.in_(COUNTING_KINDS), _not_undone())
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(1)
    )
    if report is None or now - report.created_at > dt.timedelta(minutes=window_minutes):
        return None
    return report


async def undo_report(
    session: AsyncSession, report: Report, *, person_id: int, now: dt.datetime, tz: ZoneInfo
) -> Report:
    """Take a report back: restore what it changed, keep both in the dossier, and commit.

    Refused (ReportRejected 'superseded') when someone reported on the project after it."""
    later = await session.scalar(
        select(Report.id).where(
            Report.project_id == report.project_id, Report.id > report.id, Report.kind.in_(COUNTING_KINDS),
            _not_undone(),
        ).limit(1)
    )
    if later is not None:
        raise ReportRejected("superseded")
    project = await session.get_one(Project, report.project_id)
    undo = Report(project_id=project.id, person_id=person_id, period=period_of(now, tz), kind="undo",
                  created_at=now, undoes_id=report.id)
    session.add(undo)
    await session.flush()
    changes = list(await session.scalars(select(Change).where(Change.report_id == report.id).order_by(Change.id)))
    restore: dict[str, object] = {}
    reverted: list[Change] = []
    for change in changes:
        if change.field.startswith("milestone:"):
            name = change.field.removeprefix("milestone:")
            ms = await session.scalar(select(Milestone).where(Milestone.project_id == project.id,
                                                              Milestone.name == name))
            if ms is not None:
                ms.done = None
                reverted.append(Change(project_id=project.id, at=now, source="undo", person_id=person_id,
                                       report_id=undo.id, field=change.field, old=change.new, new=None))
        else:
            restore[change.field] = from_text(change.field, change.old)
    reverted += apply_fields(project, restore, source="undo", at=now, person_id=person_id, report_id=undo.id)
    session.add_all(reverted)
    await session.commit()
    return undo


def reported_query(period: str) -> Select[tuple[int]]:
    """The ids of projects with a counting (not undone) report for `period`: this month's update is in."""
    return select(Report.project_id).where(Report.period == period, Report.kind.in_(COUNTING_KINDS), _not_undone())


async def reported_project_ids(
    session: AsyncSession, period: str, project_ids: Iterable[int] | None = None
) -> set[int]:
    """Projects with a counting (not undone) report for `period`: this month's update is in."""
    query = reported_query(period)
    if project_ids is not None:
        query = query.where(Report.project_id.in_(list(project_ids)))
    return set(await session.scalars(query.distinct()))
