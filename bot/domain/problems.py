"""Problems with a project and their escalation: pure rules over plain data.

A problem is one of
- `light`: the project is behind its time-based plan (the light's plan reasons: behind plan, past its
  planned finish, not started); its level is the worst of those reasons;
- `milestone`: one milestone past its due date and not reached (ref = milestone id); yellow, red once
  more than MILESTONE_RED_DAYS overdue. Overdue milestones are also reasons of the project's light, but
  they are tracked here, one problem each, so a light problem and a milestone problem never say the
  same thing twice and each closes on its own fix;
- `missed_update`: the monthly update is missing after the month's deadline (bot.domain.cycle; ref = the
  first month missed).
  It stays one problem while the months run on and closes with the next report, whatever its month.

Escalation is counted in working days: step 1 (county contacts) at once, step 2 (county leader)
ESCALATE_COUNTY_LEADER_AFTER working days after step 1, step 3 (city leaders) ESCALATE_CITY_AFTER
working days after step 2, each at the same local time of day its previous step went out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.domain.lights import Assessment, Reason, worst
from bot.domain.periods import at_local
from bot.domain.states import Light, ProblemStep, ProjectStatus, Role
from bot.domain.workdays import add_workdays

if TYPE_CHECKING:  # the domain reads no settings at run time (import-linter keeps bot.config out)
    from bot.config import Settings

KINDS = ("light", "milestone", "missed_update")
# who hears about a problem at each step
STEP_ROLES: dict[ProblemStep, Role] = {
    ProblemStep.CONTACT: Role.CONTACT, ProblemStep.COUNTY_LEADER: Role.COUNTY_LEADER, ProblemStep.CITY: Role.LEADER,
}
LAST_STEP = max(ProblemStep)


def identity(project_id: int, kind: str, ref: str) -> tuple[int, str, str]:
    """What makes two problems the same one: a missed update is one problem however many months it runs."""
    return (project_id, kind, "" if kind == "missed_update" else ref)


@dataclass(frozen=True)
class Finding:
    """Something wrong with a project at this moment, before it is matched with the problems on record."""

    project_id: int
    kind: str
    ref: str
    level: Light
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[int, str, str]:
        return identity(self.project_id, self.kind, self.ref)


@dataclass(frozen=True)
class OpenProblem:
    """A problem row as plain data."""

    id: int
    project_id: int
    kind: str
    ref: str
    level: Light
    step: ProblemStep
    step_at: dt.datetime | None
    opened_at: dt.datetime
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[int, str, str]:
        return identity(self.project_id, self.kind, self.ref)

    @property
    def notified(self) -> list[int]:
        """Everyone alerted so far (any step), in the order they were alerted."""
        return [int(pid) for pid in self.detail.get("notified", [])]


def reason_dict(reason: Reason) -> dict[str, Any]:
    """A light's reason as JSON for the problem's detail."""
    data: dict[str, Any] = {"code": reason.code, "level": reason.level}
    for name in ("expected", "behind", "milestone", "days"):
        value = getattr(reason, name)
        if value is not None:
            data[name] = value
    if reason.since is not None:
        data["since"] = reason.since.isoformat()
    return data


def light_findings(
    project_id: int,
    assessment: Assessment,
    *,
    progress: int,
    status: ProjectStatus,
    milestone_ids: Mapping[str, int],
) -> list[Finding]:
    """The light problem (plan reasons) and one problem per overdue milestone, from an assessment."""
    if status == ProjectStatus.COMPLETED:
        return []
    findings: list[Finding] = []
    plan = [r for r in assessment.reasons if r.code != "milestone_overdue"]
    if plan:
        findings.append(
            Finding(
                project_id, "light", "", worst(r.level for r in plan),
                {"expected": assessment.expected, "progress": progress, "status": status,
                 "reasons": [reason_dict(r) for r in plan]},
            )
        )
    for reason in assessment.reasons:
        if reason.code != "milestone_overdue" or reason.milestone is None:
            continue
        ms_id = milestone_ids.get(reason.milestone)
        if ms_id is None:
            continue
        findings.append(
            Finding(
                project_id, "milestone", str(ms_id), reason.level,
                {"milestone": reason.milestone, "due": reason.since.isoformat() if reason.since else None},
            )
        )
    return findings


def update_missing(
    *,
    status: ProjectStatus,
    today: dt.date,
    period: str,
    deadline: dt.date,
    reported_periods: Iterable[str],
    open_since: str | None,
) -> str | None:
    """The first month whose update is missing (the problem's ref), or None when the project is up to date.

    `deadline` is this month's (bot.domain.cycle moves it off weekends and holidays). After it, a project
    without this month's update is missing it; once missing, it stays missing until a report for
    that month or a later one comes in."""
    if status == ProjectStatus.COMPLETED:
        return None
    reported = set(reported_periods)
    if open_since is not None:
        return None if any(p >= open_since for p in reported) else open_since
    if today > deadline and period not in reported:
        return period
    return None


def missed_update_finding(project_id: int, ref: str, deadline: dt.date) -> Finding:
    """`deadline`: the one the month `ref` missed."""
    return Finding(project_id, "missed_update", ref, Light.YELLOW, {"period": ref, "deadline": deadline.isoformat()})


@dataclass
class Reconciled:
    """What to do with the problems on record, given what is wrong now."""

    to_open: list[Finding] = field(default_factory=list)
    worse: list[tuple[OpenProblem, Finding]] = field(default_factory=list)  # yellow → red
    better: list[tuple[OpenProblem, Finding]] = field(default_factory=list)  # red → yellow
    to_close: list[OpenProblem] = field(default_factory=list)


def reconcile(open_problems: Iterable[OpenProblem], findings: Iterable[Finding]) -> Reconciled:
    """Match findings with open problems: new ones open, vanished ones close, level changes noted."""
    result = Reconciled()
    current = {f.identity: f for f in findings}
    seen: set[tuple[int, str, str]] = set()
    for problem in open_problems:
        finding = current.get(problem.identity)
        if finding is None or problem.identity in seen:
            result.to_close.append(problem)  # fixed (or a duplicate of one already kept)
            continue
        seen.add(problem.identity)
        found, recorded = Light(finding.level).severity, Light(problem.level).severity
        if found > recorded:
            result.worse.append((problem, finding))
        elif found < recorded:
            result.better.append((problem, finding))
    result.to_open = [f for key, f in current.items() if key not in seen]
    return result


@dataclass(frozen=True)
class EscalationRules:
    """ESCALATE_COUNTY_LEADER_AFTER and ESCALATE_CITY_AFTER: their one default is on bot.config.Settings."""

    county_leader_after: int  # working days after step 1
    city_after: int  # working days after step 2

    @classmethod
    def from_settings(cls, settings: Settings) -> EscalationRules:
        return cls(
            county_leader_after=settings.escalate_county_leader_after,
            city_after=settings.escalate_city_after,
        )

    def wait_after(self, step: int) -> int:
        return self.county_leader_after if step == ProblemStep.CONTACT else self.city_after


def next_step_at(problem: OpenProblem, rules: EscalationRules, tz: ZoneInfo) -> dt.datetime | None:
    """When the problem's next step is due; None after the last step.

    Step 1 is due when the problem opens. Each later step is due the given number of working days
    after the previous one went out, at the same local time of day; a step that went out on a
    weekend or holiday counts from the next working day."""
    if problem.step >= LAST_STEP:
        return None
    if problem.step == ProblemStep.NONE or problem.step_at is None:
        return problem.opened_at
    sent = problem.step_at.astimezone(tz)
    day = add_workdays(sent.date(), rules.wait_after(problem.step))
    return at_local(day, sent.time(), tz)


def step_due(problem: OpenProblem, now: dt.datetime, rules: EscalationRules, tz: ZoneInfo) -> ProblemStep | None:
    """The step to take now, if one is due (one step per call: a late run does not skip a step)."""
    due = next_step_at(problem, rules, tz)
    if due is None or now < due:
        return None
    return ProblemStep(problem.step + 1)


def with_notified(detail: Mapping[str, Any], person_ids: Iterable[int]) -> dict[str, Any]:
    """The detail with these people added to those alerted (kept once, in order)."""
    notified = [int(pid) for pid in detail.get("notified", [])]
    for pid in person_ids:
        if pid not in notified:
            notified.append(pid)
    return {**detail, "notified": notified}


__all__ = [
    "KINDS",
    "LAST_STEP",
    "STEP_ROLES",
    "EscalationRules",
    "Finding",
    "OpenProblem",
    "Reconciled",
    "identity",
    "light_findings",
    "missed_update_finding",
    "next_step_at",
    "reason_dict",
    "reconcile",
    "step_due",
    "update_missing",
    "with_notified",
]
