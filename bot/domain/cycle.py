"""The monthly cycle (一月一更新): when a month's reminder, follow-ups and deadline fall.

Rules (one place):
- the reminder goes out on REMINDER_DAY; a weekend or official holiday moves it to the next working
  day by China's official calendar (a make-up Saturday is a working day, so it stays there);
- the deadline is DEADLINE_DAY, moved the same way, so contacts always get a working day to meet it
  and the deadline is never before the reminder;
- follow-ups go every FOLLOWUP_EVERY_WORKDAYS working days after the reminder, as long as they fall
  on or before the deadline;
- each of these goes out at REMINDER_TIME, city time;
- once the deadline day is over (midnight after it, city time) the month's reminders are stale: none
  is queued, and one still unsent is not sent late (README "Notifications").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.domain.periods import at_local, local, month_day
from bot.domain.workdays import add_workdays, next_workday

if TYPE_CHECKING:  # the domain reads settings handed to it; it does not load them
    from bot.config import Settings


@dataclass(frozen=True)
class MonthlyCycle:
    period: str
    steps: tuple[dt.date, ...]  # step 0 is the reminder, steps 1.. are follow-ups
    deadline: dt.date

    @property
    def reminder_day(self) -> dt.date:
        return self.steps[0]

    @property
    def followups(self) -> tuple[dt.date, ...]:
        return self.steps[1:]


def monthly_cycle(period: str, *, reminder_day: int, deadline_day: int, followup_every: int) -> MonthlyCycle:
    reminder = next_workday(month_day(period, reminder_day))
    deadline = max(next_workday(month_day(period, deadline_day)), reminder)
    steps = [reminder]
    while True:
        following = add_workdays(steps[-1], followup_every)
        if following > deadline:
            break
        steps.append(following)
    return MonthlyCycle(period=period, steps=tuple(steps), deadline=deadline)


def cycle_for(period: str, settings: Settings) -> MonthlyCycle:
    return monthly_cycle(
        period,
        reminder_day=settings.reminder_day,
        deadline_day=settings.deadline_day,
        followup_every=settings.followup_every_workdays,
    )


def stale_from(cycle: MonthlyCycle, tz: ZoneInfo) -> dt.datetime:
    """The moment the month's reminders go stale: the midnight after the deadline day, city time."""
    return at_local(cycle.deadline + dt.timedelta(days=1), dt.time(0, 0), tz)


def due_step(cycle: MonthlyCycle, moment: dt.datetime, clock: dt.time, tz: ZoneInfo) -> int | None:
    """The latest step whose time has come at `moment`; None before the reminder or after the deadline day.

    A run that missed a step (the service was down) lands on the latest one, so nobody gets two
    messages on the same day for the same month."""
    if local(moment, tz) >= stale_from(cycle, tz):
        return None
    due = [index for index, day in enumerate(cycle.steps) if at_local(day, clock, tz) <= moment]
    return due[-1] if due else None
