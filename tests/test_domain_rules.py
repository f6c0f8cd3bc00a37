"""Domain rules: rates, the time-based plan, lights, periods, working days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.domain.lights import LightRules, MilestoneState, ProjectState, assess, expected_progress
from bot.domain.periods import add_months, in_quiet_hours, period_of, previous_period, quiet_until
from bot.domain.rates import percent, totals
from bot.domain.workdays import add_workdays, is_workday, next_workday, workdays_between

SH = ZoneInfo("Asia/Shanghai")
RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults
D = dt.date


def test_the_seed_figures_round_half_up() -> None:
    t = totals(["completed"] * 28 + ["started"] * 13 + ["not_started"] * 3)
    assert (t.total, t.completed, t.started, t.not_started) == (44, 28, 41, 3)
    assert t.completion_rate == 64  # 63.6 %
    assert t.start_rate == 93  # 93.2 %


@pytest.mark.parametrize(("part", "whole", "expected"), [(1, 8, 13), (5, 8, 63), (1, 40, 3), (0, 0, 0), (3, 3, 100)])
def test_percent_rounds_half_up_not_to_even(part: int, whole: int, expected: int) -> None:
    assert percent(part, whole) == expected


def test_expected_progress_is_linear_between_planned_dates() -> None:
    start, finish = D(2026, 1, 1), D(2026, 12, 31)
    assert expected_progress(start, finish, D(2025, 12, 1)) == 0
    assert expected_progress(start, finish, D(2026, 7, 2)) == 50
    assert expected_progress(start, finish, D(2027, 2, 1)) == 100
    assert expected_progress(None, finish, D(2026, 7, 2)) is None


def _state(status: str = "started", progress: int = 50, milestones: tuple[MilestoneState, ...] = ()) -> ProjectState:
    return ProjectState(status, progress, D(2026, 1, 1), D(2026, 12, 31), milestones)


@pytest.mark.parametrize(
    ("progress", "light"),
    [(50, "green"), (41, "green"), (40, "yellow"), (20, "yellow"), (19, "red")],
)
def test_light_by_points_behind_plan(progress: int, light: str) -> None:
    # on 2 July the plan expects 50 %: 10–30 points behind is yellow, more than 30 red
    assert assess(_state(progress=progress), D(2026, 7, 2), RULES).light == light


def test_past_planned_finish_and_not_completed_is_red() -> None:
    result = assess(_state(progress=99), D(2027, 1, 5), RULES)
    assert result.light == "red"
    assert "past_finish" in {r.code for r in result.reasons}


def test_completed_is_green_even_late() -> None:
    assert assess(_state("completed", 100), D(2027, 6, 1), RULES).light == "green"


def test_not_started_in_its_start_month_is_yellow_and_three_months_later_red() -> None:
    state = ProjectState("not_started", 0, D(2026, 3, 10), D(2027, 12, 31))
    assert assess(state, D(2026, 2, 28), RULES).light == "green"
    assert assess(state, D(2026, 3, 1), RULES).light == "yellow"
    assert assess(state, D(2026, 6, 9), RULES).light == "yellow"
    assert assess(state, D(2026, 6, 10), RULES).light == "red"


def test_overdue_milestone_yellow_then_red_after_thirty_days() -> None:
    ms = (MilestoneState("管网铺设", D(2026, 6, 1), None),)
    assert assess(_state(progress=50, milestones=ms), D(2026, 7, 1), RULES).light == "yellow"
    assert assess(_state(progress=50, milestones=ms), D(2026, 7, 2), RULES).light == "red"
    done = (MilestoneState("管网铺设", D(2026, 6, 1), D(2026, 6, 20)),)
    assert assess(_state(progress=50, milestones=done), D(2026, 7, 2), RULES).light == "green"


def test_thresholds_are_settings() -> None:
    strict = LightRules.from_settings(Settings(_env_file=None, light_yellow_behind=5, light_red_behind=8))  # type: ignore[call-arg]
    assert assess(_state(progress=44), D(2026, 7, 2), strict).light == "yellow"
    assert assess(_state(progress=41), D(2026, 7, 2), strict).light == "red"


def test_period_is_the_citys_month() -> None:
    late_utc = dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC)  # 01:30 on 1 April in Shanghai
    assert period_of(late_utc, SH) == "2026-04"
    assert period_of(late_utc, ZoneInfo("UTC")) == "2026-03"
    assert previous_period("2026-01") == "2025-12"
    assert add_months(D(2026, 1, 31), 1) == D(2026, 2, 28)


def test_quiet_hours_span_midnight() -> None:
    window = (dt.time(21), dt.time(8))
    at_22 = dt.datetime(2026, 5, 6, 14, 0, tzinfo=dt.UTC)  # 22:00 local
    assert in_quiet_hours(at_22, window, SH)
    assert quiet_until(at_22, window, SH) == dt.datetime(2026, 5, 7, 0, 0, tzinfo=dt.UTC)  # 08:00 local
    at_9 = dt.datetime(2026, 5, 6, 1, 0, tzinfo=dt.UTC)
    assert not in_quiet_hours(at_9, window, SH)
    assert quiet_until(at_9, None, SH) == at_9


def test_spring_festival_2026_and_its_make_up_workdays() -> None:
    # 2026 Spring Festival: 15–23 February off; Saturday 14 and Saturday 28 February are working days
    assert is_workday(D(2026, 2, 14))
    assert not is_workday(D(2026, 2, 16))
    assert not is_workday(D(2026, 2, 23))
    assert is_workday(D(2026, 2, 24))
    assert is_workday(D(2026, 2, 28))
    assert next_workday(D(2026, 2, 16)) == D(2026, 2, 24)
    assert add_workdays(D(2026, 2, 13), 1) == D(2026, 2, 14)
    assert add_workdays(D(2026, 2, 14), 1) == D(2026, 2, 24)
    assert workdays_between(D(2026, 2, 13), D(2026, 2, 24)) == 2


def test_national_day_2026() -> None:
    assert not is_workday(D(2026, 10, 1))
    assert not is_workday(D(2026, 10, 7))
    assert next_workday(D(2026, 10, 1)) == D(2026, 10, 8)


def test_year_beyond_the_official_calendar_counts_weekends(caplog: pytest.LogCaptureFixture) -> None:
    assert is_workday(D(2031, 3, 3))  # a Monday
    assert not is_workday(D(2031, 3, 2))  # a Sunday


def test_a_period_is_four_and_two_ascii_digits() -> None:
    from bot.domain.periods import parse_period

    assert parse_period("2026-11") == dt.date(2026, 11, 1)
    for odd in ("２０２６-１１", "2026-+1", "2026- 1", "+026-11", "2026-1", "2026/11", "2026-13", ""):
        with pytest.raises(ValueError):
            parse_period(odd)
