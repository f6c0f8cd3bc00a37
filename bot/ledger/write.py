"""Writing a checked ledger file to the database, set-based: the projects a file names are loaded
in a few IN (...) queries, new ones go in as one batched INSERT, changed ones as batched UPDATEs
grouped by the columns they set, and the dossier's Change rows as one bulk INSERT. No query per row.

A changed field is recorded exactly as dossier.apply_fields records it (its `same` and `to_text`
rules), with source "import". A project the file adds gets one Change row, source "create", field
"name" (old None, new its name): it opens the dossier, and nothing is lost by not listing every
initial value, since each later Change keeps the value it replaced. Milestones an import adds,
moves or removes on an existing project are Change rows `milestone:<name>` whose old/new read
`due YYYY-MM-DD; done YYYY-MM-DD` (None: absent)"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ledger.dossier import TRACKED, same, to_text
from bot.ledger.format import JINZHONG_COUNTIES, county_key
from bot.ledger.issues import Issue
from bot.ledger.read import Progress
from bot.ledger.validate import NEW_PROJECT_DEFAULTS, MilestoneRow, Plan
from bot.store.models import Change, County, Milestone, Project

CHUNK = 1000  # values per IN (...) list, well under SQLite's and PostgreSQL's parameter limits
FIELD_LIMIT = 250  # Change.field's length
PROJECTS = Project.__table__
MILESTONES = Milestone.__table__
CHANGES = Change.__table__


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


@dataclass(frozen=True)
class StoredProject:
    id: int
    values: dict[str, Any]  # dossier.TRACKED fields, plus "county" by name (what a file holds)


@dataclass
class StoredMilestone:
    id: int
    due: dt.date | None
    done: dt.date | None


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def load_projects(session: AsyncSession, codes: Iterable[str]) -> dict[str, StoredProject]:
    fields = list(TRACKED)
    query = select(Project.id, Project.code, County.name, *(getattr(Project, f) for f in fields)).join(
        County, County.id == Project.county_id
    )
    wanted = set(codes)
    # A big file names most of the ledger: one plain scan beats many long IN lists (which
    # PostgreSQL may plan as a scan each, before it has statistics on freshly loaded rows).
    queries = [query] if len(wanted) > CHUNK else [query.where(Project.code.in_(c)) for c in _chunks(sorted(wanted))]
    found: dict[str, StoredProject] = {}
    for each in queries:
        for pid, code, county, *values in await session.execute(each):
            if code in wanted:
                found[code] = StoredProject(pid, {**dict(zip(fields, values, strict=True)), "county": county})
    return found


async def load_counties(session: AsyncSession) -> list[County]:
    return list(await session.scalars(select(County).order_by(County.sort_order, County.name)))


def changed_fields(current: Mapping[str, Any], values: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each field whose value differs, by dossier.apply_fields' rule."""
    changed = []
    for name, new in values.items():
        if name not in TRACKED:
            raise KeyError(f"untracked field {name}")
        old = current.get(name)
        if old != new and not same(old, new):  # equal values are always the same: skip the text forms
            changed.append((name, old, new))
    return changed


def milestone_text(due: dt.date | None, done: dt.date | None) -> str:
    """How a milestone's dates read in the dossier (language-neutral)."""
    return f"due {due.isoformat() if due else '—'}; done {done.isoformat() if done else '—'}"


class _Dossier:
    """The Change rows an import writes, gathered as plain dicts for one bulk INSERT."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.rows: list[dict[str, Any]] = []

    def add(self, project_id: int, source: str, name: str, old: str | None, new: str | None) -> None:
        self.rows.append({"project_id": project_id, "at": self.now, "source": source, "report_id": None,
                          "person_id": None, "field": name[:FIELD_LIMIT], "old": old, "new": new})


async def write_plan(
    session: AsyncSession,
    plan: Plan,
    existing: Mapping[str, StoredProject],
    counties: list[County],
    *,
    now: dt.datetime,
    progress: Progress | None = None,
) -> ImportResult:
    result = ImportResult(warnings=plan.warnings, counties_created=list(plan.new_counties))
    result.rows = len(plan.projects) + sum(len(rows) for rows in (plan.milestones or {}).values())
    county_ids = await _create_counties(session, plan.new_counties, counties)
    dossier = _Dossier(now)
    ids = {code: stored.id for code, stored in existing.items()}
    touched: set[str] = set()
    new_rows: list[dict[str, Any]] = []
    updates: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for row in plan.projects:
        values = {k: v for k, v in row.values.items() if k not in ("code", "county")}
        if "county" in row.values:
            values["county_id"] = county_ids[county_key(str(row.values["county"]))]
        stored = existing.get(row.code)
        if stored is None:
            new_rows.append({"code": row.code, **NEW_PROJECT_DEFAULTS, **values, "updated_at": now})
            continue
        changed = changed_fields(stored.values, values)
        if changed:
            touched.add(row.code)
            updates[frozenset(name for name, _, _ in changed)].append(
                {"_id": stored.id, "updated_at": now, **{name: new for name, _, new in changed}})
            for name, old, new in changed:
                dossier.add(stored.id, "import", name, to_text(old), to_text(new))

    if new_rows:
        inserted = await session.execute(insert(PROJECTS).returning(PROJECTS.c.id, PROJECTS.c.code), new_rows)
        ids.update({code: pid for pid, code in inserted})
        for new in new_rows:  # one entry opens the dossier (see the module's docstring)
            dossier.add(ids[new["code"]], "create", "name", None, new["name"])
    for columns, params in updates.items():
        statement = update(PROJECTS).where(PROJECTS.c.id == bindparam("_id")).values(
            {name: bindparam(name) for name in (*columns, "updated_at")})
        await session.execute(statement, params)
    if progress:
        progress("write", len(plan.projects), len(plan.projects))

    if plan.milestones:
        new_codes = {row["code"] for row in new_rows}
        ms_touched = await _replace_milestones(session, plan.milestones, ids, new_codes, dossier)
        result.milestones_changed = sum(ms_touched.values())
        again = [ids[code] for code in ms_touched if code not in new_codes and code not in touched]
        for chunk in _chunks(again):  # a project whose milestones changed has changed
            await session.execute(update(PROJECTS).where(PROJECTS.c.id.in_(chunk)).values(updated_at=now))
        touched.update(code for code in ms_touched if code not in new_codes)

    for start in range(0, len(dossier.rows), 5000):
        await session.execute(insert(CHANGES), dossier.rows[start : start + 5000])
    result.created = len(new_rows)
    result.updated = len(touched)
    result.unchanged = len(plan.projects) - result.created - len(touched & {r.code for r in plan.projects})
    result.change_rows = len(dossier.rows)
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


async def _load_milestones(session: AsyncSession, project_ids: list[int]) -> dict[int, dict[str, StoredMilestone]]:
    found: dict[int, dict[str, StoredMilestone]] = defaultdict(dict)
    wanted = set(project_ids)
    query = select(Milestone.id, Milestone.project_id, Milestone.name, Milestone.due, Milestone.done)
    queries = [query] if len(wanted) > CHUNK else [
        query.where(Milestone.project_id.in_(c)) for c in _chunks(sorted(wanted))]
    for each in queries:
        for mid, pid, name, due, done in await session.execute(each):
            if pid in wanted:
                found[pid][name] = StoredMilestone(mid, due, done)
    return found


async def _replace_milestones(
    session: AsyncSession,
    sheet: Mapping[str, list[MilestoneRow]],
    ids: Mapping[str, int],
    new_codes: set[str],
    dossier: _Dossier,
) -> dict[str, int]:
    """Each project on the milestone sheet gets exactly the sheet's milestones (added, moved or
    removed). Returns how many milestones changed, by project code."""
    current = await _load_milestones(session, [ids[code] for code in sheet if code not in new_codes])
    inserts: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    removed: list[int] = []
    counts: dict[str, int] = defaultdict(int)
    for code, rows in sheet.items():
        pid = ids[code]
        record = code not in new_codes  # a new project's milestones are part of its creation
        have = current.get(pid, {})
        wanted = {row.name: row for row in rows}
        for name, row in wanted.items():
            stored = have.get(name)
            if stored is None:
                inserts.append({"project_id": pid, "name": name, "due": row.due, "done": row.done})
                if record:
                    dossier.add(pid, "import", f"milestone:{name}", None, milestone_text(row.due, row.done))
            elif (stored.due, stored.done) != (row.due, row.done):
                moves.append({"_id": stored.id, "due": row.due, "done": row.done})
                dossier.add(pid, "import", f"milestone:{name}", milestone_text(stored.due, stored.done),
                            milestone_text(row.due, row.done))
            else:
                continue
            counts[code] += 1
        for name, stored in have.items():
            if name not in wanted:
                removed.append(stored.id)
                dossier.add(pid, "import", f"milestone:{name}", milestone_text(stored.due, stored.done), None)
                counts[code] += 1
    for chunk in _chunks(removed):
        await session.execute(delete(MILESTONES).where(MILESTONES.c.id.in_(chunk)))
    if moves:
        await session.execute(update(MILESTONES).where(MILESTONES.c.id == bindparam("_id")).values(
            due=bindparam("due"), done=bindparam("done")), moves)
    if inserts:
        await session.execute(insert(MILESTONES), inserts)
    return counts
