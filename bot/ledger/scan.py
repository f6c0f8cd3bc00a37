"""The whole ledger read in two queries and assessed at one moment: what alerts and the digest both see.

Loading is set-based (projects, then milestones), so a scan costs the same whatever the number of
reports; assessing is pure (bot.domain.lights.assess over plain data)."""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lights import Assessment, LightRules, MilestoneState, ProjectState, assess
from bot.domain.states import ProjectStatus
from bot.store.models import County, Milestone, Project


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a pass over the whole ledger (a job, the digest, the cockpit's
    city page). Such a pass makes a few objects per project that all live until it ends; while they pile
    up the collector walks the growing heap again and again (40 % of the alert scan's time and a quarter
    of the city page's at 10,000 projects, bench/scale.py and bench/web.py). Reference counting still
    frees what is dropped, and the collector resumes (and catches up) right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def give_memory_back() -> None:
    """After a pass over the whole ledger in a long-running service (a scheduled job): collect what it left
    and hand the freed heap back to the system (glibc's malloc_trim), so an idle service does not keep the
    pass's peak (bench/memory.py at 10,000 projects: 147 → 140 MB). Elsewhere the allocator keeps it."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim from the process's own symbols; None with another C library."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # type: ignore[no-any-return]
    except OSError:
        return None


class ProjectFacts(NamedTuple):
    """One project as plain data: what the lights and the messages need (a NamedTuple, as the states in
    bot.domain.lights: immutable and quick to build for every project)."""

    id: int
    code: str
    name: str
    county_id: int
    state: ProjectState
    milestone_ids: tuple[int, ...] = ()  # parallel to state.milestones (the overdue ones: load_project_facts)

    @property
    def status(self) -> ProjectStatus:
        return self.state.status


async def load_project_facts(
    session: AsyncSession, today: dt.date, county_id: int | None = None, *, ids: Sequence[int] | None = None
) -> list[ProjectFacts]:
    """Every project (of one county, or all; or those of `ids`), by code, with the milestones that can turn
    its light on `today` (bot.domain.lights.overdue: not reached and past due; at 10,000 projects about one
    in eight of them), in two queries."""
    query = select(
        Project.id, Project.code, Project.name, Project.county_id, Project.status, Project.progress,
        Project.planned_start, Project.planned_finish,
    ).order_by(Project.code)
    ms_query = select(Milestone.project_id, Milestone.id, Milestone.name, Milestone.due, Milestone.done).where(
        Milestone.done.is_(None), Milestone.due < today)  # lights.overdue, in SQL
    if county_id is not None:
        query = query.where(Project.county_id == county_id)
        ms_query = ms_query.join(Project, Project.id == Milestone.project_id).where(Project.county_id == county_id)
    if ids is not None:
        query = query.where(Project.id.in_(list(ids)))
        ms_query = ms_query.where(Milestone.project_id.in_(list(ids)))
    # through the connection, all rows at once: plain rows, without the ORM's result handling or a fetch per
    # row (together half the time here at 10,000 projects)
    connection = await session.connection()
    milestones: dict[int, list[tuple[int, MilestoneState]]] = defaultdict(list)
    for project_id, ms_id, name, due, done in (await connection.execute(ms_query)).all():
        milestones[project_id].append((ms_id, MilestoneState(name, due, done)))
    facts = []
    for pid, code, name, cid, status, progress, start, finish in (await connection.execute(query)).all():
        own = milestones.get(pid)
        if own is None:  # most projects: nothing overdue
            facts.append(ProjectFacts(pid, code, name, cid, ProjectState(status, progress, start, finish)))
            continue
        own.sort(key=lambda item: (item[1].due, item[0]))  # by due date, as Project.milestones orders them
        facts.append(ProjectFacts(pid, code, name, cid,
                                  ProjectState(status, progress, start, finish, tuple(ms for _, ms in own)),
                                  tuple(ms_id for ms_id, _ in own)))
    return facts


def assess_all(facts: list[ProjectFacts], today: dt.date, rules: LightRules) -> dict[int, Assessment]:
    """Each project's light on `today`, by project id."""
    return {f.id: assess(f.state, today, rules) for f in facts}


async def county_names(session: AsyncSession) -> dict[int, str]:
    return {cid: name for cid, name in await session.execute(select(County.id, County.name))}

