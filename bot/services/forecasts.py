"""Each project's progress readings, read from the dossier in two set-based queries, and its forecast
(bot.domain.forecast) on a day: for the card, the digest, the bulletin and the cockpit alike.

A reading is the progress known on a day: the ledger's when the project was created by an import, each
import that changed it, and each report that counts (progress or 本月无变化, not undone) with the
progress in effect once it was saved."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.domain.forecast import Forecast, Reading, forecast
from bot.ledger.scan import ProjectFacts
from bot.services.reports import counting
from bot.store.models import Change, Report


def _in(column: InstrumentedAttribute[int], ids: Sequence[int] | None) -> ColumnElement[bool]:
    return true() if ids is None else column.in_(list(ids))


async def readings(
    session: AsyncSession, current: Mapping[int, int], tz: ZoneInfo, *, ids: Sequence[int] | None = None
) -> dict[int, list[Reading]]:
    """The readings of the projects in `current` (project id → its progress now), oldest first."""
    changes = await session.execute(
        select(Change.project_id, Change.at, Change.source, Change.old, Change.new)
        .where(or_(Change.field == "progress", and_(Change.source == "create", Change.field == "name")),
               _in(Change.project_id, ids))
        .order_by(Change.project_id, Change.at, Change.id)
    )
    created: dict[int, dt.datetime] = {}
    steps: dict[int, list[tuple[dt.datetime, int, str]]] = defaultdict(list)  # (at, progress after, source)
    first_old: dict[int, int] = {}
    for pid, at, source, old, new in changes:
        if source == "create":
            created.setdefault(pid, at)
            continue
        first_old.setdefault(pid, int(old or 0))
        steps[pid].append((at, int(new or 0), source))
    reports = await session.execute(
        select(Report.project_id, Report.created_at)
        .where(counting(), _in(Report.project_id, ids))
    )
    reported: dict[int, list[dt.datetime]] = defaultdict(list)
    for pid, at in reports:
        reported[pid].append(at)

    found: dict[int, list[Reading]] = {}
    for pid, now_progress in current.items():
        own = steps.get(pid, [])
        initial = first_old.get(pid, now_progress)
        times = [at for at, _, _ in own]

        def progress_at(moment: dt.datetime, own: list[tuple[dt.datetime, int, str]] = own,
                        times: list[dt.datetime] = times, initial: int = initial) -> int:
            index = bisect.bisect_right(times, moment)
            return own[index - 1][1] if index else initial

        moments: list[tuple[dt.datetime, int]] = []
        if pid in created:
            moments.append((created[pid], progress_at(created[pid])))
        moments += [(at, value) for at, value, source in own if source == "import"]
        moments += [(at, progress_at(at)) for at in reported.get(pid, ())]
        moments.sort(key=lambda item: item[0])
        found[pid] = [Reading(at.astimezone(tz).date(), value) for at, value in moments]
    return found


async def reading_bounds(
    session: AsyncSession, current: Mapping[int, int], tz: ZoneInfo, *, ids: Sequence[int] | None = None
) -> dict[int, list[Reading]]:
    """What a forecast reads of the readings, for many projects at once: the first and the latest (or the one
    there is), counted and dated in the database (GROUP BY) instead of walking every report. The latest
    reading holds the progress the ledger holds now; the first, the progress before the first change."""
    times: dict[int, list[dt.datetime]] = defaultdict(list)  # project → (first, last) of each kind of reading
    count: dict[int, int] = defaultdict(int)
    kinds = (
        select(Report.project_id, func.count(), func.min(Report.created_at), func.max(Report.created_at))
        .where(counting(), _in(Report.project_id, ids)).group_by(Report.project_id),
        select(Change.project_id, func.count(), func.min(Change.at), func.max(Change.at))
        .where(Change.field == "progress", Change.source == "import", _in(Change.project_id, ids))
        .group_by(Change.project_id),
        select(Change.project_id, func.count(), func.min(Change.at), func.max(Change.at))
        .where(Change.source == "create", Change.field == "name", _in(Change.project_id, ids))
        .group_by(Change.project_id),
    )
    for query in kinds:
        for pid, n, first, last in await session.execute(query):
            count[pid] += n
            times[pid] += [first, last]
    first_change = (select(func.min(Change.id)).where(Change.field == "progress", Change.source != "create",
                                                       _in(Change.project_id, ids)).group_by(Change.project_id))
    before: dict[int, tuple[dt.datetime, int, int]] = {}  # project → its first progress change: at, old, new
    for pid, at, old, new in await session.execute(
        select(Change.project_id, Change.at, Change.old, Change.new).where(Change.id.in_(first_change))
    ):
        before[pid] = (at, int(old or 0), int(new or 0))
    found: dict[int, list[Reading]] = {}
    for pid, now_progress in current.items():
        if not count.get(pid):
            found[pid] = []
            continue
        first, last = min(times[pid]), max(times[pid])
        latest = Reading(last.astimezone(tz).date(), now_progress)
        if count[pid] < 2:
            found[pid] = [latest]
            continue
        change = before.get(pid)
        value = now_progress if change is None else (change[1] if first < change[0] else change[2])
        found[pid] = [Reading(first.astimezone(tz).date(), value), latest]
    return found


async def forecasts(
    session: AsyncSession, facts: Iterable[ProjectFacts], today: dt.date, tz: ZoneInfo, *, every: bool = False
) -> dict[int, Forecast]:
    """The forecast of each project in `facts` on `today` (from reading_bounds: the same as from every reading).
    Only unfinished projects with a plan have readings to read; `every`: the facts are the whole ledger, so when
    all of them need reading no list of ids is sent."""
    facts = list(facts)
    wanted = [f for f in facts if f.state.status != "completed" and f.state.planned_start and f.state.planned_finish]
    current = {f.id: f.state.progress for f in wanted}
    found = await reading_bounds(session, current, tz,
                                 ids=None if every and len(wanted) == len(facts) else list(current))
    return {
        f.id: forecast(status=f.state.status, planned_start=f.state.planned_start,
                       planned_finish=f.state.planned_finish, readings=found.get(f.id, ()), today=today)
        for f in facts
    }
