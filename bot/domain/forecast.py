"""Where an unfinished project is heading: earned schedule (Lipke) against the linear time-based plan
(序时进度, bot.domain.lights.expected_progress), from the progress readings of its dossier (README
"Forecast").

With a plan from `planned_start` to `planned_finish` (PD days), the plan expects p % after PD·p/100
days. At the latest reading (its day is the data date, AT days after the planned start) the project
has p %, so:

- ES, the schedule earned = PD · p / 100 (when the plan expected today's progress);
- SPI(t) = ES / AT;
- forecast duration IEAC(t) = PD / SPI(t), the forecast finish = planned start + IEAC(t), rounded up
  to a whole day;
- the pace needed from `today` to finish on time = the points left / the months left.

At least two readings (the ledger's, then a report; or two reports) are needed; fewer: "not enough
reports yet". Exact arithmetic (fractions), so the hand-computed cases in the tests hold to the day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from bot.domain.periods import add_months

MIN_READINGS = 2
DAYS_PER_MONTH = Fraction(36525, 1200)  # 365.25 / 12: "points a month" in calendar months on average
LONGEST_DAYS = 100 * 366  # a forecast further out than a century says nothing: the project is stalled

# what a forecast can say (templates: `forecast` macros)
COMPLETED = "completed"  # finished: nothing to forecast
NO_PLAN = "no_plan"  # no planned start or finish (or a finish not after the start)
TOO_FEW = "too_few_reports"  # fewer than MIN_READINGS readings
NOT_DUE = "not_due"  # the plan had not begun at the latest reading: on plan by definition
STALLED = "stalled"  # no progress earned (0 %): no finish can be forecast
FORECAST = "forecast"  # a finish date


@dataclass(frozen=True)
class Reading:
    """The project's progress as known on a day (the ledger's import, or a report)."""

    day: dt.date
    progress: int


@dataclass(frozen=True)
class Forecast:
    kind: str
    planned_finish: dt.date | None = None
    as_of: dt.date | None = None  # the data date: the latest reading's day
    progress: int | None = None  # at the data date
    planned_days: int | None = None  # PD
    elapsed_days: int | None = None  # AT
    earned_days: Fraction | None = None  # ES
    spi: Fraction | None = None  # SPI(t)
    finish: dt.date | None = None  # the forecast finish
    gained: int | None = None  # points between the first and the latest reading
    span_days: int | None = None  # days between them
    today: dt.date | None = None
    # pace and needed are worked out when shown: a digest forecasts every project but shows a few

    @property
    def pace(self) -> Fraction | None:
        """Points a month between the first and the latest reading."""
        if not self.span_days or self.gained is None or self.span_days <= 0:
            return None
        return Fraction(self.gained, self.span_days) * DAYS_PER_MONTH

    @property
    def needed(self) -> Fraction | None:
        """Points a month from today to finish on time; None once the finish has passed."""
        if self.today is None or self.progress is None or self.planned_finish is None:
            return None
        return _needed(self.progress, self.planned_finish, self.today)

    @property
    def late_days(self) -> int | None:
        """Days the forecast finish falls after the planned finish (negative: before)."""
        if self.finish is None or self.planned_finish is None:
            return None
        return (self.finish - self.planned_finish).days

    @property
    def late_by_over_a_month(self) -> bool:
        """Forecast to finish more than a (calendar) month after the planned finish, or stalled past its start."""
        if self.planned_finish is None:
            return False
        if self.kind == STALLED:
            return True
        return self.finish is not None and self.finish > add_months(self.planned_finish, 1)

    @property
    def spi_percent(self) -> int | None:
        """SPI(t) as a whole per cent (100: on plan), for display."""
        return None if self.spi is None else round(self.spi * 100)


def _needed(progress: int, planned_finish: dt.date, today: dt.date) -> Fraction | None:
    days_left = (planned_finish - today).days
    if days_left <= 0:
        return None
    return Fraction(100 - progress, days_left) * DAYS_PER_MONTH


def forecast(
    *,
    status: str,
    planned_start: dt.date | None,
    planned_finish: dt.date | None,
    readings: Sequence[Reading],
    today: dt.date,
) -> Forecast:
    """The forecast for one project; `readings` in any order (the latest day is the data date)."""
    if status == "completed":
        return Forecast(COMPLETED, planned_finish)
    if planned_start is None or planned_finish is None or planned_finish <= planned_start:
        return Forecast(NO_PLAN, planned_finish)
    ordered = sorted(readings, key=lambda r: r.day)
    if len(ordered) < MIN_READINGS:
        return Forecast(TOO_FEW, planned_finish)
    first, latest = ordered[0], ordered[-1]
    planned = (planned_finish - planned_start).days
    elapsed = (latest.day - planned_start).days
    common = {"planned_finish": planned_finish, "as_of": latest.day, "progress": latest.progress,
              "planned_days": planned, "elapsed_days": elapsed, "gained": latest.progress - first.progress,
              "span_days": (latest.day - first.day).days, "today": today}
    if elapsed <= 0:
        return Forecast(NOT_DUE, finish=planned_finish, **common)
    earned = min(Fraction(planned * latest.progress, 100), Fraction(planned))
    if earned == 0:
        return Forecast(STALLED, earned_days=earned, spi=Fraction(0), **common)
    spi = earned / elapsed
    duration = planned / spi
    if duration > LONGEST_DAYS:
        return Forecast(STALLED, earned_days=earned, spi=spi, **common)
    # ceil of an exact fraction without a float in between: -(-a // b)
    return Forecast(FORECAST, earned_days=earned, spi=spi, **common,
                    finish=planned_start + dt.timedelta(days=-(-duration.numerator // duration.denominator)))
