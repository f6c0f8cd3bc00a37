"""Problem rules: what opens a problem, when it closes, and when each escalation step is due (working days)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.domain.lights import LightRules, MilestoneState, ProjectState, assess
from bot.domain.problems import (
    EscalationRules,
    Finding,
    OpenProblem,
    light_findings,
    next_step_at,
    reconcile,
    step_due,
    update_missing,
    with_notified,
)

SH = ZoneInfo("Asia/Shanghai")
D = dt.date
RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults
ESCALATION = EscalationRules(county_leader_after=2, city_after=3)
JULY_2 = D(2026, 7, 2)  # the plan over 2026 expects 50 %


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH).astimezone(dt.UTC)


def _findings(progress: int, status: str = "started", milestones: tuple[MilestoneState, ...] = (),
              today: dt.date = JULY_2) -> list[Finding]:
    state = ProjectState(status, progress, D(2026, 1, 1), D(2026, 12, 31), milestones)
    ids = {ms.name: 100 + i for i, ms in enumerate(milestones)}
    return light_findings(7, assess(state, today, RULES), progress=progress, status=status, milestone_ids=ids)


def test_a_project_behind_plan_opens_a_light_problem_with_plan_and_actual() -> None:
    [finding] = _findings(progress=15)  # the plan expects 50 % on 2 July
    assert (finding.kind, finding.level) == ("light", "red")
    assert finding.detail["expected"] == 50 and finding.detail["progress"] == 15
    assert finding.detail["reasons"] == [{"code": "behind_plan", "level": "red", "expected": 50, "behind": 35}]
    assert _findings(progress=45) == []


def test_an_overdue_milestone_is_its_own_problem_not_part_of_the_light_one() -> None:
    late = MilestoneState("管网铺设", D(2026, 6, 1), None)
    findings = _findings(progress=50, milestones=(late,))
    assert [(f.kind, f.ref, f.level) for f in findings] == [("milestone", "100", "red")]  # 31 days overdue
    assert findings[0].detail == {"milestone": "管网铺设", "due": "2026-06-01"}
    done = MilestoneState("管网铺设", D(2026, 6, 1), D(2026, 6, 20))
    assert _findings(progress=50, milestones=(done,)) == []


def test_completed_projects_have_no_problems() -> None:
    late = MilestoneState("验收", D(2026, 3, 1), None)
    assert _findings(progress=100, status="completed", milestones=(late,), today=D(2027, 3, 1)) == []
    assert update_missing(status="completed", today=D(2026, 9, 30), period="2026-09", deadline=D(2026, 9, 28),
                          reported_periods=(), open_since=None) is None


def test_a_missed_update_opens_after_the_deadline_and_stays_until_any_later_report() -> None:
    def missing(today: dt.date, period: str, reported: tuple[str, ...], open_since: str | None = None) -> str | None:
        deadline = D(int(period[:4]), int(period[5:]), 25)
        return update_missing(status="started", today=today, period=period, deadline=deadline,
                              reported_periods=reported, open_since=open_since)

    assert missing(D(2026, 10, 25), "2026-10", ()) is None  # the deadline day itself is still in time
    assert missing(D(2026, 10, 26), "2026-10", ()) == "2026-10"
    assert missing(D(2026, 10, 26), "2026-10", ("2026-10",)) is None
    # open since October: November's first days do not close it, a November report does
    assert missing(D(2026, 11, 3), "2026-11", (), open_since="2026-10") == "2026-10"
    assert missing(D(2026, 11, 3), "2026-11", ("2026-11",), open_since="2026-10") is None
    # still missing after November's deadline: the same problem (same ref), not a second one
    assert missing(D(2026, 11, 30), "2026-11", (), open_since="2026-10") == "2026-10"


def _open(kind: str = "light", level: str = "yellow", ref: str = "", step: int = 1,
          step_at: dt.datetime | None = None) -> OpenProblem:
    opened = local(2026, 9, 30, 10, 0)
    return OpenProblem(id=1, project_id=7, kind=kind, ref=ref, level=level, step=step,
                       step_at=step_at or opened, opened_at=opened)


def test_reconcile_opens_closes_and_notes_level_changes() -> None:
    kept_red = Finding(7, "light", "", "red")
    result = reconcile([_open(level="yellow")], [kept_red])
    assert result.worse == [(_open(level="yellow"), kept_red)] and not result.to_open and not result.to_close
    result = reconcile([_open(level="red")], [Finding(7, "light", "", "yellow")])
    assert len(result.better) == 1
    result = reconcile([_open()], [Finding(7, "milestone", "3", "yellow")])
    assert result.to_close == [_open()] and [f.kind for f in result.to_open] == ["milestone"]
    # a missed update is one problem whatever month the finding names
    result = reconcile([_open(kind="missed_update", ref="2026-09")], [Finding(7, "missed_update", "2026-10", "yellow")])
    assert not result.to_open and not result.to_close


def test_escalation_counts_working_days_across_national_day() -> None:
    # step 1 went out Wed 30 Sep 2026 10:00; 1–7 Oct are holidays, Sat 10 Oct is a make-up working day
    step1 = _open(step=1, step_at=local(2026, 9, 30, 10, 0))
    assert next_step_at(step1, ESCALATION, SH) == local(2026, 10, 9, 10, 0)  # 8 Oct, 9 Oct
    assert step_due(step1, local(2026, 10, 9, 9, 59), ESCALATION, SH) is None
    assert step_due(step1, local(2026, 10, 9, 10, 0), ESCALATION, SH) == 2
    step2 = _open(step=2, step_at=local(2026, 10, 9, 10, 0))
    assert next_step_at(step2, ESCALATION, SH) == local(2026, 10, 13, 10, 0)  # 10 Oct (make-up), 12, 13
    assert next_step_at(_open(step=3), ESCALATION, SH) is None


def test_a_step_sent_on_a_holiday_counts_from_the_next_working_day() -> None:
    step1 = _open(step=1, step_at=local(2026, 10, 3, 9, 0))  # a Saturday inside the holiday
    assert next_step_at(step1, ESCALATION, SH) == local(2026, 10, 10, 9, 0)  # counted from 8 Oct: 9, 10


def test_a_new_problem_is_due_its_first_step_at_once_and_steps_never_skip() -> None:
    fresh = _open(step=0, step_at=None)
    assert step_due(fresh, fresh.opened_at, ESCALATION, SH) == 1
    long_ago = _open(step=1, step_at=local(2026, 1, 5, 10, 0))
    assert step_due(long_ago, local(2026, 12, 1, 10, 0), ESCALATION, SH) == 2


def test_notified_people_are_kept_once_in_order() -> None:
    detail = with_notified({"expected": 50}, [3, 4])
    assert with_notified(detail, [4, 9]) == {"expected": 50, "notified": [3, 4, 9]}
