"""Working days by China's official calendar (holidays and make-up workdays), weekends beyond it."""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

import chinese_calendar

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


@lru_cache(maxsize=4096)
def is_workday(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # The package covers the years the State Council has published; beyond them, weekends only.
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("official calendar does not cover %s: counting weekends only", day.year)
        return day.weekday() < 5


def next_workday(day: dt.date) -> dt.date:
    """`day` itself if it is a working day, else the next one."""
    while not is_workday(day):
        day += dt.timedelta(days=1)
    return day


def add_workdays(day: dt.date, count: int) -> dt.date:
    """The `count`-th working day after `day` (count 0: `day` moved to a working day)."""
    day = next_workday(day)
    while count > 0:
        day += dt.timedelta(days=1)
        if is_workday(day):
            count -= 1
    return day


def workdays_between(start: dt.date, end: dt.date) -> int:
    """Working days in (start, end]: how many working days have passed since `start` by `end`."""
    if end <= start:
        return 0
    return sum(1 for offset in range(1, (end - start).days + 1) if is_workday(start + dt.timedelta(days=offset)))
