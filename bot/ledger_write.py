"""Writing a checked ledger file to the database, set-based: one query loads the projects a file
names, new rows go in as one batch, and the dossier's Change rows go in as one bulk INSERT.

A field that changed is recorded as dossier.apply_fields records it: source "import" for a project
already in the ledger, "create" for one the file adds (one Change row per field it fills)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dossier import TRACKED, apply_fields
from bot.ledger_format import JINZHONG_COUNTIES, county_key
from bot.ledger_issues import Issue
from bot.ledger_read import Progress
from bot.ledger_validate import NEW_PROJECT_DEFAULTS, MilestoneRow, Plan
from bot.models import Change, County, Milestone, Project

CHUNK = 1000  # values per IN (...) list, well under SQLite's and PostgreSQL's parameter limits
FIELD_LIMIT = 40  # Change.field's length


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    milestones_changed: int = 0
    change_rows: int = 0
    counties_created: list[str] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    rows: int = 0  # project and milestone rows the file held

    @property
    def nothing_to_import(self) -> bool:
        return self.rows == 0


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def load_projects(session: AsyncSession, codes: Iterable[str]) -> dict[str, Project]:
    wanted = sorted(set(codes))
    found: dict[str, Project] = {}
    for chunk in _chunks(wanted):
        for project in await session.scalars(select(Project).where(Project.code.in_(chunk))):
            found[project.code] = project
    return found


async def load_counties(session: AsyncSession) -> list[County]:
    return list(await session.scalars(select(County).order_by(County.sort_order, County.name)))


def snapshot(project: Project) -> dict[str, object]:
    """The project's ledger fields as plain values, with its county by name (what the file holds)."""
    values = {name: getattr(project, name) for name in TRACKED}
    values["county"] = project.county.name
    return values


def milestone_text(due: dt.date | None, done: dt.date | None) -> str:
    """How a milestone's dates read in the dossier (language-neutral)."""
    return f"due {due.isoformat() if due else '—'}; done {done.isoformat() if done else '—'}"


async def write_plan(
    session: AsyncSession,
    plan: Plan,
    existing: dict[str, Project],
    counties: list[County],
    *,
    now: dt.datetime,
    progress: Progress | None = None,
) -> ImportResult:
    result = ImportResult(warnings=plan.warnings, counties_created=list(plan.new_counties))
    existing = dict(existing)  # the caller's map stays as it was; new projects join this copy
    result.rows = len(plan.projects) + sum(len(rows) for rows in (plan.milestones or {}).values())
    current_ms = await _load_milestones(session, [existing[c].id for c in plan.milestones or {} if c in existing])
    county_ids = await _create_counties(session, plan.new_counties, counties)

    changes: list[Change] = []
    created: list[tuple[Project, list[Change]]] = []
    touched: set[str] = set()
    for index, row in enumerate(plan.projects, 1):
        values = {k: v for k, v in row.values.items() if k not in ("code", "county")}
        if "county" in row.values:
            values["county_id"] = county_ids[county_key(str(row.values["county"]))]
        project = existing.get(row.code)
        if project is None:
            project = Project(code=row.code)
            created.append((project, apply_fields(project, {**NEW_PROJECT_DEFAULTS, **values}, source="create",
                                                  at=now)))
            existing[row.code] = project
        else:
            row_changes = apply_fields(project, values, source="import", at=now)
            if row_changes:
                touched.add(row.code)
                changes.extend(row_changes)
        if progress and index % 2000 == 0:
            progress("check", index, len(plan.projects))
    session.add_all(project for project, _ in created)
    await session.flush()  # one batched INSERT (and UPDATEs grouped by the columns they set)
    for project, row_changes in created:
        for change in row_changes:
            change.project_id = project.id
        changes.extend(row_changes)

    new_codes = {project.code for project, _ in created}
    for code, rows in (plan.milestones or {}).items():
        project = existing[code]
        ms_changes = _replace_milestones(session, project, rows, current_ms.get(project.id, {}),
                                         source="create" if code in new_codes else "import", now=now)
        if ms_changes:
            result.milestones_changed += len(ms_changes)
            changes.extend(ms_changes)
            if code not in new_codes:
                project.updated_at = now
                touched.add(code)
    await session.flush()
    await _insert_changes(session, changes, progress)

    result.created = len(created)
    result.updated = len(touched)
    result.unchanged = len(plan.projects) - result.created - len(touched & {r.code for r in plan.projects})
    result.change_rows = len(changes)
    return result


async def _create_counties(session: AsyncSession, names: list[str], counties: list[County]) -> dict[str, int]:
    """Counties the file introduces (with --new-counties): Jinzhong's keep the programme's order,
    others follow the known ones in the order the file first names them."""
    next_order = max([c.sort_order for c in counties] + [len(JINZHONG_COUNTIES)]) + 1
    added = []
    for name in names:
        if name in JINZHONG_COUNTIES:
            order = JINZHONG_COUNTIES.index(name) + 1
        else:
            order, next_order = next_order, next_order + 1
        added.append(County(name=name, sort_order=order))
    session.add_all(added)
    if added:
        await session.flush()
    return {county_key(c.name): c.id for c in [*counties, *added]}


async def _load_milestones(session: AsyncSession, project_ids: list[int]) -> dict[int, dict[str, Milestone]]:
    found: dict[int, dict[str, Milestone]] = {}
    for chunk in _chunks(project_ids):
        for ms in await session.scalars(select(Milestone).where(Milestone.project_id.in_(chunk))):
            found.setdefault(ms.project_id, {})[ms.name] = ms
    return found


def _replace_milestones(
    session: AsyncSession,
    project: Project,
    rows: list[MilestoneRow],
    current: dict[str, Milestone],
    *,
    source: str,
    now: dt.datetime,
) -> list[Change]:
    """The project's milestones become exactly the file's: added, changed or removed, each a Change."""
    changes: list[Change] = []

    def record(name: str, old: str | None, new: str | None) -> None:
        changes.append(Change(project_id=project.id, at=now, source=source, field=f"milestone:{name}"[:FIELD_LIMIT],
                              old=old, new=new))

    wanted = {row.name: row for row in rows}
    for name, row in wanted.items():
        ms = current.get(name)
        if ms is None:
            session.add(Milestone(project_id=project.id, name=name, due=row.due, done=row.done))
            record(name, None, milestone_text(row.due, row.done))
        elif (ms.due, ms.done) != (row.due, row.done):
            record(name, milestone_text(ms.due, ms.done), milestone_text(row.due, row.done))
            ms.due, ms.done = row.due, row.done
    for name, ms in current.items():
        if name not in wanted:
            session.sync_session.delete(ms)
            record(name, milestone_text(ms.due, ms.done), None)
    return changes


async def _insert_changes(session: AsyncSession, changes: list[Change], progress: Progress | None) -> None:
    columns = ("project_id", "at", "source", "report_id", "person_id", "field", "old", "new")
    rows = [{name: getattr(change, name) for name in columns} for change in changes]
    step = 5000
    for start in range(0, len(rows), step):
        await session.execute(insert(Change), rows[start : start + step])
        if progress:
            progress("write", min(start + step, len(rows)), len(rows))
