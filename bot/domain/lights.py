"""The time-based plan (序时进度) and the red/yellow/green lights (红黄绿灯).

The thresholds are settings (LIGHT_YELLOW_BEHIND, LIGHT_RED_BEHIND, NOT_STARTED_RED_MONTHS,
MILESTONE_RED_DAYS): their one default is on bot.config.Settings, and LightRules has none of its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from bot.domain.periods import add_months
from bot.domain.states import Light, ProjectStatus

if TYPE_CHECKING:  # the domain reads no settings at run time (import-linter keeps bot.config out)
    from bot.config import Settings


@dataclass(frozen=True)
class LightRules:
    yellow_behind: int  # percentage points behind plan that turn a project yellow
    red_behind: int  # more than this: red
    not_started_red_months: int  # not started this many months after the planned start: red
    milestone_red_days: int  # a milestone overdue more than this many days: red

    @classmethod
    def from_settings(cls, settings: Settings) -> LightRules:
        return cls(
            yellow_behind=settings.light_yellow_behind,
            red_behind=settings.light_red_behind,
            not_started_red_months=settings.not_started_red_months,
            milestone_red_days=settings.milestone_red_days,
        )


# The states and assessments below are NamedTuples: immutable like frozen dataclasses, and built several
# times faster, which counts when the whole ledger is assessed (10,000 projects: bench/web.py, bench/scale.py).


class MilestoneState(NamedTuple):
    name: str
    due: dt.date | None
    done: dt.date | None


class ProjectState(NamedTuple):
    status: ProjectStatus
    progress: int
    planned_start: dt.date | None
    planned_finish: dt.date | None
    milestones: tuple[MilestoneState, ...] = ()


class Reason(NamedTuple):
    """Why a light is not green; `code` picks the template, the rest fills it."""

    code: str  # behind_plan | past_finish | not_started | not_started_late | milestone_overdue
    level: Light
    expected: int | None = None
    behind: int | None = None
    since: dt.date | None = None
    milestone: str | None = None
    days: int | None = None


class Assessment(NamedTuple):
    light: Light
    expected: int | None
    reasons: tuple[Reason, ...] = ()


def expected_progress(planned_start: dt.date | None, planned_finish: dt.date | None, today: dt.date) -> int | None:
    """Linear from 0 % on the planned start to 100 % on the planned finish; None without a plan."""
    if planned_start is None or planned_finish is None:
        return None
    if today <= planned_start:
        return 0
    if today >= planned_finish:
        return 100
    span = (planned_finish - planned_start).days
    done = (today - planned_start).days
    return (done * 200 + span) // (2 * span)  # done·100/span rounded half up, in whole numbers (both > 0)


def overdue(ms: MilestoneState, today: dt.date) -> bool:
    """A milestone not reached and past its due date: the only kind a light looks at (whole-ledger reads
    load no other: bot.ledger.scan.load_project_facts)."""
    return ms.done is None and ms.due is not None and today > ms.due


def worst(levels: Iterable[Light]) -> Light:
    """The most severe of `levels` (green when there is none): a project's light from its reasons."""
    found = Light.GREEN
    for level in levels:
        if level.severity > found.severity:
            found = level
    return found


def assess(state: ProjectState, today: dt.date, rules: LightRules) -> Assessment:
    expected = expected_progress(state.planned_start, state.planned_finish, today)
    if state.status == ProjectStatus.COMPLETED:
        return Assessment(Light.GREEN, expected)
    reasons: list[Reason] = []

    if expected is not None:
        behind = expected - state.progress
        if behind > rules.red_behind:
            reasons.append(Reason("behind_plan", Light.RED, expected=expected, behind=behind))
        elif behind >= rules.yellow_behind:
            reasons.append(Reason("behind_plan", Light.YELLOW, expected=expected, behind=behind))

    if state.planned_finish is not None and today > state.planned_finish:
        reasons.append(Reason("past_finish", Light.RED, since=state.planned_finish))

    if state.status == ProjectStatus.NOT_STARTED and state.planned_start is not None:
        start_month = state.planned_start.replace(day=1)
        if today >= add_months(state.planned_start, rules.not_started_red_months):
            reasons.append(Reason("not_started_late", Light.RED, since=state.planned_start))
        elif today >= start_month:
            reasons.append(Reason("not_started", Light.YELLOW, since=state.planned_start))

    for ms in state.milestones:
        if overdue(ms, today):
            days = (today - ms.due).days  # type: ignore[operator]  # overdue: a due date
            level = Light.RED if days > rules.milestone_red_days else Light.YELLOW
            reasons.append(Reason("milestone_overdue", level, since=ms.due, milestone=ms.name, days=days))

    return Assessment(worst(r.level for r in reasons), expected, tuple(reasons))
