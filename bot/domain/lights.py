"""The time-based plan (序时进度) and the red/yellow/green lights (红黄绿灯)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from bot.domain.periods import add_months

SEVERITY = {"green": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True)
class LightRules:
    yellow_behind: int = 10  # percentage points behind plan that turn a project yellow
    red_behind: int = 30  # more than this: red
    not_started_red_months: int = 3
    milestone_red_days: int = 30

    @classmethod
    def from_settings(cls, settings: object) -> LightRules:
        return cls(
            yellow_behind=settings.light_yellow_behind,  # type: ignore[attr-defined]
            red_behind=settings.light_red_behind,  # type: ignore[attr-defined]
            not_started_red_months=settings.not_started_red_months,  # type: ignore[attr-defined]
            milestone_red_days=settings.milestone_red_days,  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class MilestoneState:
    name: str
    due: dt.date | None
    done: dt.date | None


@dataclass(frozen=True)
class ProjectState:
    status: str
    progress: int
    planned_start: dt.date | None
    planned_finish: dt.date | None
    milestones: tuple[MilestoneState, ...] = ()


@dataclass(frozen=True)
class Reason:
    """Why a light is not green; `code` picks the template, the rest fills it."""

    code: str  # behind_plan | past_finish | not_started | not_started_late | milestone_overdue
    level: str
    expected: int | None = None
    behind: int | None = None
    since: dt.date | None = None
    milestone: str | None = None
    days: int | None = None


@dataclass(frozen=True)
class Assessment:
    light: str
    expected: int | None
    reasons: tuple[Reason, ...] = field(default=())


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
    return int((Decimal(done * 100) / Decimal(span)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _worst(reasons: list[Reason]) -> str:
    return max((r.level for r in reasons), key=SEVERITY.__getitem__, default="green")


def assess(state: ProjectState, today: dt.date, rules: LightRules) -> Assessment:
    expected = expected_progress(state.planned_start, state.planned_finish, today)
    if state.status == "completed":
        return Assessment("green", expected)
    reasons: list[Reason] = []

    if expected is not None:
        behind = expected - state.progress
        if behind > rules.red_behind:
            reasons.append(Reason("behind_plan", "red", expected=expected, behind=behind))
        elif behind >= rules.yellow_behind:
            reasons.append(Reason("behind_plan", "yellow", expected=expected, behind=behind))

    if state.planned_finish is not None and today > state.planned_finish:
        reasons.append(Reason("past_finish", "red", since=state.planned_finish))

    if state.status == "not_started" and state.planned_start is not None:
        start_month = state.planned_start.replace(day=1)
        if today >= add_months(state.planned_start, rules.not_started_red_months):
            reasons.append(Reason("not_started_late", "red", since=state.planned_start))
        elif today >= start_month:
            reasons.append(Reason("not_started", "yellow", since=state.planned_start))

    for ms in state.milestones:
        if ms.done is None and ms.due is not None and today > ms.due:
            days = (today - ms.due).days
            level = "red" if days > rules.milestone_red_days else "yellow"
            reasons.append(Reason("milestone_overdue", level, since=ms.due, milestone=ms.name, days=days))

    return Assessment(_worst(reasons), expected, tuple(reasons))
