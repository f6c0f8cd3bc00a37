"""The weekly digest's figures: gathered in a few set-based queries, then computed per scope (the city,
one county) by pure functions.

What "since last week" compares with: the figures stored (table `snapshots`) by the latest digest
built at least SNAPSHOT_MIN_AGE_DAYS days before; without one, the digest says it is the first.
Projects newly started or completed are those whose status moved across that same window (from the
dossier's status changes, so a change undone within the window does not count). The month's 骏马 /
蜗牛 (fastest / slowest county) are ranked by the progress points the county's projects gained this
month, from the dossier's progress changes (an undo counts against them; a project's creation by an
import is not progress).

Totals per county come from bot.ledger.queries.county_figures, the GROUP BY that `qingshui stats`
prints, so the digest and the command line always agree.


Over ~400 lines on purpose: the digest's figures (plain data read in a few queries, then every scope's
totals, ranking, lights, lists and forecasts) are one computation read top to bottom; the monthly bulletin
and the cockpit reuse it whole."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.forecast import Forecast
from bot.domain.lights import Assessment, LightRules
from bot.domain.periods import parse_period, period_of
from bot.domain.problems import reason_dict
from bot.domain.rates import Totals
from bot.domain.states import Light, ProjectStatus, Role
from bot.ledger.queries import county_figures
from bot.ledger.scan import ProjectFacts, assess_all, load_project_facts
from bot.services.forecasts import forecasts
from bot.services.reports import reported_project_ids
from bot.store.models import Change, Person, Snapshot

SNAPSHOT_MIN_AGE_DAYS = 6  # "last week": the latest digest at least this many days older
FIRST_WINDOW_DAYS = 7  # without an older digest, "newly started" looks back this far
CITY = "city"


def county_scope(county_id: int) -> str:
    return f"county:{county_id}"


# --- plain data gathered from the database ---------------------------------------------------


@dataclass(frozen=True)
class StatusChange:
    project_id: int
    at: dt.datetime
    old: str | None
    new: str | None


@dataclass(frozen=True)
class PreviousFigures:
    """A stored snapshot: when it was taken and what it showed."""

    taken_at: dt.datetime
    figures: Mapping[str, Any]


@dataclass(frozen=True)
class LedgerData:
    """Everything a digest is computed from, read at one moment."""

    now: dt.datetime
    period: str
    counties: list[tuple[int, str]]  # in the ledger's order
    county_totals: Mapping[int, Totals]
    facts: list[ProjectFacts]
    assessments: Mapping[int, Assessment]
    reported: frozenset[int]  # projects with this month's update in
    gained: Mapping[int, int]  # project id → progress points gained this month
    status_changes: list[StatusChange]  # ordered by time, since the oldest window any scope needs
    contacts: Mapping[int, list[str]]  # county id → contact names
    previous: Mapping[str, PreviousFigures]  # scope → the snapshot to compare with
    forecasts: Mapping[int, Forecast] = field(default_factory=dict)  # project id → its forecast (README "Forecast")

    @cached_property
    def by_county(self) -> dict[int, list[ProjectFacts]]:
        grouped: dict[int, list[ProjectFacts]] = defaultdict(list)
        for fact in self.facts:
            grouped[fact.county_id].append(fact)
        return grouped

    @cached_property
    def county_rows(self) -> list[CountyRow]:
        """One row per county, in the ledger's order (computed once, shared by every scope)."""
        return county_rows(self)

    @cached_property
    def _flagged(self) -> dict[int, ProjectLine]:
        return {}

    @cached_property
    def county_names(self) -> dict[int, str]:
        return dict(self.counties)

    def flagged_line(self, fact: ProjectFacts) -> ProjectLine:
        """A red or yellow project's line with its reasons, built when first shown and then shared by the
        city's figures and its county's (at 10,000 projects most lines are never shown)."""
        line = self._flagged.get(fact.id)
        if line is None:
            line = self._flagged[fact.id] = _line(fact, self.county_names, self.assessments[fact.id])
        return line


# --- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectLine:
    code: str
    name: str
    county: str
    level: Light = Light.GREEN
    reasons: tuple[dict[str, Any], ...] = ()


class ProjectLines(Sequence[ProjectLine]):
    """A list of project lines whose lines are built when read: its length, a slice (`red[:limit]` in
    the texts) or a walk builds only what is read."""

    def __init__(self, facts: list[ProjectFacts], line: Callable[[ProjectFacts], ProjectLine]) -> None:
        self._facts = facts
        self._line = line

    def __len__(self) -> int:
        return len(self._facts)

    @overload
    def __getitem__(self, index: int) -> ProjectLine: ...
    @overload
    def __getitem__(self, index: slice) -> list[ProjectLine]: ...
    def __getitem__(self, index: int | slice) -> ProjectLine | list[ProjectLine]:
        if isinstance(index, slice):
            return [self._line(f) for f in self._facts[index]]
        return self._line(self._facts[index])

    def __iter__(self) -> Iterator[ProjectLine]:
        return (self._line(f) for f in self._facts)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ProjectLines | list):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by content, like a list

    def __repr__(self) -> str:
        return f"ProjectLines({len(self)})"


@dataclass(frozen=True)
class LateLine:
    """A project forecast to finish more than a month after its planned finish."""

    code: str
    name: str
    county: str
    forecast: Forecast


@dataclass(frozen=True)
class CountyRow:
    county_id: int
    name: str
    totals: Totals
    lights: Mapping[Light, int]
    gained: int  # progress points this month
    missing: int  # projects without this month's update

    @property
    def completion_rate(self) -> int:
        return self.totals.completion_rate

    @property
    def start_rate(self) -> int:
        return self.totals.start_rate


@dataclass(frozen=True)
class MissingRow:
    county: str
    projects: int
    contacts: tuple[str, ...]
    codes: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    """One scope's digest: the city (county_id None) or one county."""

    scope: str
    county_id: int | None
    county: str | None
    today: dt.date
    period: str
    totals: Totals
    lights: Mapping[Light, int]
    previous: Mapping[str, Any] | None  # last week's figures, None for a first digest
    ranking: list[CountyRow]  # every county, best first
    rank: int | None  # the county's place in the ranking (county scope)
    started: list[ProjectLine]
    completed: list[ProjectLine]
    red: ProjectLines
    yellow: ProjectLines
    missing: list[MissingRow]
    fastest: CountyRow | None
    slowest: CountyRow | None
    own: CountyRow | None  # the county's own row (county scope)
    unreachable: list[dict[str, Any]] = field(default_factory=list)
    late: list[LateLine] = field(default_factory=list)  # forecast to finish over a month late, latest first

    @property
    def change(self) -> dict[str, int | None]:
        """Rates and totals minus last week's (None for a first digest)."""
        keys = ("completion_rate", "start_rate", "completed", "started", "total")
        if self.previous is None:
            return dict.fromkeys(keys)
        now = snapshot_figures(self)
        return {k: int(now[k]) - int(self.previous.get(k, 0)) for k in keys}


def sum_totals(parts: Iterable[Totals]) -> Totals:
    total = completed = started = 0
    for part in parts:
        total, completed, started = total + part.total, completed + part.completed, started + part.started
    return Totals(total=total, completed=completed, started=started)


def ranked(rows: Iterable[CountyRow]) -> list[CountyRow]:
    """Best first: completion rate, then start rate; ties keep the ledger's county order."""
    return sorted(rows, key=lambda r: (-r.completion_rate, -r.start_rate))


def fastest_and_slowest(rows: Iterable[CountyRow]) -> tuple[CountyRow | None, CountyRow | None]:
    """骏马 (most points gained this month) and 蜗牛 (fewest); none when nobody moved or all moved alike."""
    candidates = [r for r in rows if r.totals.total > r.totals.completed or r.gained]
    if len(candidates) < 2:
        return None, None
    fast = max(candidates, key=lambda r: r.gained)
    slow = min(candidates, key=lambda r: r.gained)
    if fast.gained <= 0 or fast.gained == slow.gained:
        return None, None
    return fast, slow


def status_at(changes: Iterable[StatusChange], since: dt.datetime) -> dict[int, str | None]:
    """For each project whose status changed after `since`, its status at `since`."""
    before: dict[int, str | None] = {}
    for change in changes:
        if change.at > since and change.project_id not in before:
            before[change.project_id] = change.old
    return before


def snapshot_figures(figures: Figures, taken_at: dt.datetime | None = None) -> dict[str, Any]:
    """What a snapshot stores, so next week's digest can show the change."""
    t = figures.totals
    data: dict[str, Any] = {
        "total": t.total, "completed": t.completed, "started": t.started,
        "completion_rate": t.completion_rate, "start_rate": t.start_rate, "lights": dict(figures.lights),
    }
    if taken_at is not None:
        data["taken_at"] = taken_at.isoformat()
    return data


def _line(fact: ProjectFacts, counties: Mapping[int, str], assessment: Assessment | None = None) -> ProjectLine:
    if assessment is None:
        return ProjectLine(fact.code, fact.name, counties.get(fact.county_id, ""))
    worst_first = sorted(assessment.reasons, key=lambda r: -Light(r.level).severity)
    return ProjectLine(fact.code, fact.name, counties.get(fact.county_id, ""), assessment.light,
                       tuple(reason_dict(r) for r in worst_first))


def county_rows(data: LedgerData) -> list[CountyRow]:
    lights = {cid: dict.fromkeys(Light, 0) for cid, _ in data.counties}
    gained = dict.fromkeys(lights, 0)
    missing = dict.fromkeys(lights, 0)
    for f in data.facts:  # one pass: at 10,000 projects every pass counts
        cid = f.county_id
        if cid not in lights:
            continue
        lights[cid][data.assessments[f.id].light] += 1
        gained[cid] += data.gained.get(f.id, 0)
        if f.status != ProjectStatus.COMPLETED and f.id not in data.reported:
            missing[cid] += 1
    return [CountyRow(county_id=cid, name=name, totals=data.county_totals.get(cid, Totals(0, 0, 0)),
                      lights=lights[cid], gained=gained[cid], missing=missing[cid])
            for cid, name in data.counties]


def figures_for(data: LedgerData, county_id: int | None, tz: ZoneInfo) -> Figures:
    """The digest of the city (county_id None) or of one county."""
    names = data.county_names
    scope = CITY if county_id is None else county_scope(county_id)
    facts = data.facts if county_id is None else data.by_county.get(county_id, [])
    rows = data.county_rows
    ranking = ranked(r for r in rows if r.totals.total)
    own = next((r for r in rows if r.county_id == county_id), None)
    totals = (data.county_totals.get(county_id, Totals(0, 0, 0)) if county_id is not None
              else sum_totals(data.county_totals.values()))

    previous = data.previous.get(scope)
    since = previous.taken_at if previous else data.now - dt.timedelta(days=FIRST_WINDOW_DAYS)
    before = status_at(data.status_changes, since)
    started, done = [], []
    for fact in facts:
        if fact.id not in before:
            continue
        was = before[fact.id] or ProjectStatus.NOT_STARTED
        if was == ProjectStatus.NOT_STARTED and fact.status in (ProjectStatus.STARTED, ProjectStatus.COMPLETED):
            started.append(_line(fact, names))
        if was != ProjectStatus.COMPLETED and fact.status == ProjectStatus.COMPLETED:
            done.append(_line(fact, names))

    lights = dict.fromkeys(Light, 0)
    flagged: dict[Light, list[ProjectFacts]] = {Light.RED: [], Light.YELLOW: []}
    missing_codes: dict[int, list[str]] = defaultdict(list)
    late = []
    for f in facts:  # one pass: at 10,000 projects every pass counts
        light = data.assessments[f.id].light
        lights[light] += 1
        if light in flagged:
            flagged[light].append(f)
        if f.status != ProjectStatus.COMPLETED and f.id not in data.reported:
            missing_codes[f.county_id].append(f.code)
        outlook = data.forecasts.get(f.id)
        if outlook is not None and outlook.late_by_over_a_month:
            late.append(LateLine(f.code, f.name, names.get(f.county_id, ""), outlook))
    late.sort(key=lambda line: (line.forecast.finish is not None, -(line.forecast.late_days or 0), line.code))
    red = ProjectLines(flagged[Light.RED], data.flagged_line)
    yellow = ProjectLines(flagged[Light.YELLOW], data.flagged_line)
    missing = [
        MissingRow(name, len(missing_codes[cid]), tuple(data.contacts.get(cid, ())), tuple(missing_codes[cid]))
        for cid, name in data.counties if missing_codes.get(cid)
    ]
    fastest, slowest = fastest_and_slowest(rows)
    return Figures(
        scope=scope, county_id=county_id, county=names.get(county_id) if county_id is not None else None,
        today=data.now.astimezone(tz).date(), period=data.period, totals=totals,
        lights=lights,
        previous=previous.figures if previous else None,
        ranking=ranking, rank=next((i for i, r in enumerate(ranking, 1) if r.county_id == county_id), None),
        started=started, completed=done, red=red, yellow=yellow, missing=missing,
        fastest=fastest, slowest=slowest, own=own, late=late,
    )


# --- queries ----------------------------------------------------------------------------------


def month_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    first = parse_period(period_of(now, tz))
    return dt.datetime.combine(first, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


async def progress_gained(session: AsyncSession, since: dt.datetime) -> dict[int, int]:
    """Progress points each project gained since `since` (net of undos), from the dossier.

    A range on changes(at): the cost follows this month's changes, not the whole history. Summed here
    rather than in SQL: SQLite's planner then probes every project's changes (1.5–2× slower at 10,000)."""
    query = select(Change.project_id, Change.old, Change.new).where(
        Change.at >= since, Change.field == "progress", Change.source != "create"
    )
    gained: dict[int, int] = defaultdict(int)
    for project_id, old, new in (await (await session.connection()).execute(query)).all():
        gained[project_id] += int(new or 0) - int(old or 0)
    return dict(gained)


async def status_changes(session: AsyncSession, since: dt.datetime) -> list[StatusChange]:
    query = (
        select(Change.project_id, Change.at, Change.old, Change.new)
        .where(Change.at > since, Change.field == "status", Change.source != "create")
        .order_by(Change.at, Change.id)
    )
    return [StatusChange(pid, at, old, new) for pid, at, old, new in await session.execute(query)]


async def contacts_by_county(session: AsyncSession) -> dict[int, list[str]]:
    rows = await session.execute(
        select(Person.county_id, Person.name)
        .where(Person.role == Role.CONTACT, Person.county_id.is_not(None), Person.telegram_id.is_not(None))
        .order_by(Person.id)
    )
    contacts: dict[int, list[str]] = defaultdict(list)
    for county_id, name in rows:
        contacts[county_id].append(name)
    return dict(contacts)


async def previous_snapshots(session: AsyncSession, today: dt.date) -> dict[str, PreviousFigures]:
    """Per scope, the latest snapshot at least SNAPSHOT_MIN_AGE_DAYS days before `today`."""
    cutoff = today - dt.timedelta(days=SNAPSHOT_MIN_AGE_DAYS)
    latest = (
        select(Snapshot.scope, func.max(Snapshot.taken_on).label("taken_on"))
        .where(Snapshot.taken_on <= cutoff)
        .group_by(Snapshot.scope)
        .subquery()
    )
    rows = await session.execute(
        select(Snapshot.scope, Snapshot.taken_on, Snapshot.figures)
        .join(latest, and_(Snapshot.scope == latest.c.scope, Snapshot.taken_on == latest.c.taken_on))
    )
    found = {}
    for scope, taken_on, figures in rows:
        stamp = figures.get("taken_at")
        taken_at = (dt.datetime.fromisoformat(stamp) if stamp
                    else dt.datetime.combine(taken_on, dt.time(0), tzinfo=dt.UTC))
        found[scope] = PreviousFigures(taken_at, figures)
    return found


async def gather(session: AsyncSession, now: dt.datetime, tz: ZoneInfo, rules: LightRules) -> LedgerData:
    """Read everything the digests need at `now`: a handful of queries whatever the ledger's size."""
    today = now.astimezone(tz).date()
    period = period_of(now, tz)
    facts = await load_project_facts(session, today)
    previous = await previous_snapshots(session, today)
    window = min([p.taken_at for p in previous.values()] + [now - dt.timedelta(days=FIRST_WINDOW_DAYS)])
    counties = await county_figures(session)
    outlooks = await forecasts(session, facts, today, tz, every=True)
    return LedgerData(
        now=now, period=period, counties=[(c.county_id, c.name) for c in counties],
        county_totals={c.county_id: c.totals for c in counties}, facts=facts,
        assessments=assess_all(facts, today, rules),
        reported=frozenset(await reported_project_ids(session, period)),
        gained=await progress_gained(session, month_start(now, tz)),
        status_changes=await status_changes(session, window),
        contacts=await contacts_by_county(session),
        previous=previous, forecasts=outlooks,
    )


async def save_snapshot(session: AsyncSession, figures: Figures, now: dt.datetime) -> None:
    """Store the figures the digest showed (one row per scope and day; a rebuild the same day replaces it)."""
    values = {"scope": figures.scope, "taken_on": figures.today, "figures": snapshot_figures(figures, now)}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Snapshot).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["scope", "taken_on"],
                                                     set_={"figures": stmt.excluded.figures}))


async def unreachable_people(session: AsyncSession, counties: Mapping[int, str]) -> list[dict[str, Any]]:
    """People the bot cannot write to (blocked it, deleted their account): for the admins' digest."""
    rows = await session.scalars(select(Person).where(Person.reachable.is_(False)).order_by(Person.id))
    return [{"name": p.name, "role": p.role, "county": counties.get(p.county_id) if p.county_id else None,
             "reason": p.unreachable_reason} for p in rows]


__all__ = [
    "CITY",
    "CountyRow",
    "Figures",
    "LateLine",
    "LedgerData",
    "MissingRow",
    "PreviousFigures",
    "ProjectLine",
    "ProjectLines",
    "StatusChange",
    "county_rows",
    "county_scope",
    "fastest_and_slowest",
    "figures_for",
    "gather",
    "month_start",
    "previous_snapshots",
    "progress_gained",
    "ranked",
    "save_snapshot",
    "snapshot_figures",
    "status_at",
    "status_changes",
    "sum_totals",
    "unreachable_people",
]
