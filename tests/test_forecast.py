"""The forecast by earned schedule, against cases worked by hand.

The plan of every case runs 100 days: 2026-01-01 → 2026-04-11 (January 31 + February 28 + March 31 =
90 days, then 10 more). The plan so expects p % after p days."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from bot.domain.forecast import (
    COMPLETED,
    DAYS_PER_MONTH,
    FORECAST,
    NO_PLAN,
    NOT_DUE,
    STALLED,
    TOO_FEW,
    Reading,
    forecast,
)

START, FINISH = dt.date(2026, 1, 1), dt.date(2026, 4, 11)
DAY_50 = dt.date(2026, 2, 20)  # 31 + 19 = 50 days after the start


def plan(readings: list[Reading], *, status: str = "started", today: dt.date = DAY_50,
         start: dt.date | None = START, finish: dt.date | None = FINISH):
    return forecast(status=status, planned_start=start, planned_finish=finish, readings=readings, today=today)


def test_on_plan_finishes_on_the_planned_day() -> None:
    # 50 % on day 50: ES = 100 × 50 % = 50 days, SPI = 50 / 50 = 1, duration 100 days → 2026-04-11
    f = plan([Reading(START, 0), Reading(DAY_50, 50)])
    assert f.kind == FORECAST
    assert (f.earned_days, f.elapsed_days, f.spi) == (50, 50, 1)
    assert f.finish == FINISH and f.late_days == 0 and not f.late_by_over_a_month
    # 50 points left in 50 days: 1 a day, 30.44 a month; the pace so far was the same
    assert f.needed == DAYS_PER_MONTH and f.pace == DAYS_PER_MONTH


def test_late_is_forecast_to_finish_a_hundred_days_late() -> None:
    # 25 % on day 50: ES = 25, SPI = 0.5, duration 100 / 0.5 = 200 days → 2026-07-20, 100 days late
    f = plan([Reading(dt.date(2026, 1, 21), 5), Reading(DAY_50, 25)])
    assert f.kind == FORECAST
    assert f.earned_days == 25 and f.spi == Fraction(1, 2) and f.spi_percent == 50
    assert f.finish == dt.date(2026, 7, 20)
    assert f.late_days == 100 and f.late_by_over_a_month
    # 75 points in the 50 days left: 1.5 a day; so far 20 points in 30 days
    assert f.needed == Fraction(3, 2) * DAYS_PER_MONTH
    assert f.pace == Fraction(20, 30) * DAYS_PER_MONTH


def test_ahead_finishes_early() -> None:
    # 80 % on day 50: ES = 80, SPI = 1.6, duration 62.5 days, rounded up to 63 → 2026-03-05, 37 days early
    f = plan([Reading(START, 0), Reading(DAY_50, 80)])
    assert f.spi == Fraction(8, 5)
    assert f.finish == dt.date(2026, 3, 5) and f.late_days == -37 and not f.late_by_over_a_month


def test_slightly_late_within_a_month_is_not_flagged() -> None:
    # 40 % on day 50: SPI = 0.8, duration 125 days → 2026-05-06, 25 days late: less than a month
    f = plan([Reading(START, 0), Reading(DAY_50, 40)])
    assert f.finish == dt.date(2026, 5, 6) and f.late_days == 25 and not f.late_by_over_a_month


def test_the_latest_reading_is_the_data_date_not_today() -> None:
    # the same 50 % on day 50, looked at 20 days later without a new report: still on plan at its data date,
    # but the 50 points left now have 30 days
    f = plan([Reading(DAY_50, 50), Reading(START, 0)], today=dt.date(2026, 3, 12))
    assert f.as_of == DAY_50 and f.finish == FINISH
    assert f.needed == Fraction(50, 30) * DAYS_PER_MONTH


def test_not_started_after_the_planned_start_cannot_be_forecast() -> None:
    f = plan([Reading(START, 0), Reading(DAY_50, 0)], status="not_started")
    assert f.kind == STALLED and f.finish is None and f.spi == 0
    assert f.late_by_over_a_month  # it cannot finish on time: the digest lists it
    assert f.needed == 2 * DAYS_PER_MONTH  # 100 points in 50 days


def test_not_started_before_the_planned_start_is_on_plan() -> None:
    f = plan([Reading(dt.date(2025, 11, 1), 0), Reading(dt.date(2025, 12, 1), 0)], status="not_started",
             today=dt.date(2025, 12, 1))
    assert f.kind == NOT_DUE and f.finish == FINISH and not f.late_by_over_a_month
    assert f.needed == Fraction(100, 131) * DAYS_PER_MONTH  # 100 points in the 131 days to 2026-04-11


def test_past_the_planned_finish_needs_no_pace_only_a_date() -> None:
    # 90 % on day 150 (2026-05-31): ES = 90, SPI = 0.6, duration 166.7 → 167 days → 2026-06-17
    f = plan([Reading(START, 0), Reading(dt.date(2026, 5, 31), 90)], today=dt.date(2026, 6, 1))
    assert f.finish == dt.date(2026, 6, 17) and f.needed is None and f.late_by_over_a_month


def test_no_plan_and_completed_say_so() -> None:
    readings = [Reading(START, 0), Reading(DAY_50, 50)]
    assert plan(readings, start=None).kind == NO_PLAN
    assert plan(readings, finish=None).kind == NO_PLAN
    assert plan(readings, finish=START).kind == NO_PLAN
    assert plan(readings, status="completed").kind == COMPLETED


def test_fewer_than_two_readings_are_not_enough() -> None:
    assert plan([]).kind == TOO_FEW
    assert plan([Reading(DAY_50, 50)]).kind == TOO_FEW
    assert plan([Reading(DAY_50, 50)]).finish is None
