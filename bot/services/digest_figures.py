"""The weekly digest's figures for one scope (the city, one county), computed by pure functions from the
plain data bot.services.digest gathers: totals and both rates with the change since last week, the
counties ranked, light counts, newly started and completed projects, the red and yellow lists, who
has not reported, the month's 骏马 and 蜗牛 (see bot.services.digest for what each compares with)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.lights import SEVERITY, Assessment
from bot.domain.problems import reason_dict
from bot.domain.rates import Totals
from bot.ledger.scan import ProjectFacts

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
    def flagged_lines(self) -> dict[int, ProjectLine]:
        """The line of every red or yellow project, with its reasons: built once, for the city's digest
        and its county's alike."""
        names = dict(self.counties)
        return {f.id: _line(f, names, self.assessments[f.id]) for f in self.facts
                if self.assessments[f.id].light in ("red", "yellow")}


# --- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectLine:
    code: str
    name: str
    county: str
    level: str = "green"
    reasons: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CountyRow:
    county_id: int
    name: str
    totals: Totals
    lights: Mapping[str, int]
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
    lights: Mapping[str, int]
    previous: Mapping[str, Any] | None  # last week's figures, None for a first digest
    ranking: list[CountyRow]  # every county, best first
    rank: int | None  # the county's place in the ranking (county scope)
    started: list[ProjectLine]
    completed: list[ProjectLine]
    red: list[ProjectLine]
    yellow: list[ProjectLine]
    missing: list[MissingRow]
    fastest: CountyRow | None
    slowest: CountyRow | None
    own: CountyRow | None  # the county's own row (county scope)
    unreachable: list[dict[str, Any]] = field(default_factory=list)

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


def light_counts(levels: Iterable[str]) -> dict[str, int]:
    counts = {"green": 0, "yellow": 0, "red": 0}
    for level in levels:
        counts[level] += 1
    return counts


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
    worst_first = sorted(assessment.reasons, key=lambda r: -SEVERITY[r.level])
    return ProjectLine(fact.code, fact.name, counties.get(fact.county_id, ""), assessment.light,
                       tuple(reason_dict(r) for r in worst_first))


def county_rows(data: LedgerData) -> list[CountyRow]:
    rows = []
    for cid, name in data.counties:
        own = data.by_county.get(cid, [])
        rows.append(CountyRow(
            county_id=cid, name=name, totals=data.county_totals.get(cid, Totals(0, 0, 0)),
            lights=light_counts(data.assessments[f.id].light for f in own),
            gained=sum(data.gained.get(f.id, 0) for f in own),
            missing=sum(1 for f in own if f.status != "completed" and f.id not in data.reported),
        ))
    return rows


def figures_for(data: LedgerData, county_id: int | None, tz: ZoneInfo) -> Figures:
    """The digest of the city (county_id None) or of one county."""
    names = dict(data.counties)
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
        was = before[fact.id] or "not_started"
        if was == "not_started" and fact.status in ("started", "completed"):
            started.append(_line(fact, names))
        if was != "completed" and fact.status == "completed":
            done.append(_line(fact, names))

    red = [data.flagged_lines[f.id] for f in facts if data.assessments[f.id].light == "red"]
    yellow = [data.flagged_lines[f.id] for f in facts if data.assessments[f.id].light == "yellow"]

    missing_codes: dict[int, list[str]] = defaultdict(list)
    for f in facts:
        if f.status != "completed" and f.id not in data.reported:
            missing_codes[f.county_id].append(f.code)
    missing = [
        MissingRow(name, len(missing_codes[cid]), tuple(data.contacts.get(cid, ())), tuple(missing_codes[cid]))
        for cid, name in data.counties if missing_codes.get(cid)
    ]
    fastest, slowest = fastest_and_slowest(rows)
    return Figures(
        scope=scope, county_id=county_id, county=names.get(county_id) if county_id is not None else None,
        today=data.now.astimezone(tz).date(), period=data.period, totals=totals,
        lights=light_counts(data.assessments[f.id].light for f in facts),
        previous=previous.figures if previous else None,
        ranking=ranking, rank=next((i for i, r in enumerate(ranking, 1) if r.county_id == county_id), None),
        started=started, completed=done, red=red, yellow=yellow, missing=missing,
        fastest=fastest, slowest=slowest, own=own,
    )
