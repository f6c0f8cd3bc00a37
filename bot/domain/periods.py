"""Months (periods `YYYY-MM`) and local times in the city's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def local(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give an aware one")
    return moment.astimezone(tz)


def period_of(moment: dt.datetime, tz: ZoneInfo) -> str:
    """The reporting month a moment falls in, in the city's zone (23:30 UTC on the 31st is next month)."""
    return local(moment, tz).strftime("%Y-%m")


def period_of_date(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_period(period: str) -> dt.date:
    """First day of a `YYYY-MM` period; ValueError on anything else."""
    year, sep, month = period.partition("-")
    digits = (year + month).isascii() and (year + month).isdigit()  # int() would take "+1" and "０１" too
    if not sep or len(year) != 4 or len(month) != 2 or not digits:
        raise ValueError(f"not a period YYYY-MM: {period!r}")
    return dt.date(int(year), int(month), 1)


def previous_period(period: str) -> str:
    first = parse_period(period)
    return period_of_date(first - dt.timedelta(days=1))


def month_day(period: str, day: int) -> dt.date:
    return parse_period(period).replace(day=day)


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day `months` later, clamped to the month's end (Jan 31 + 1 → Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def at_local(day: dt.date, clock: dt.time, tz: ZoneInfo) -> dt.datetime:
    """A local wall-clock moment as an aware UTC datetime."""
    return dt.datetime.combine(day, clock, tzinfo=tz).astimezone(dt.UTC)


def in_quiet_hours(moment: dt.datetime, window: tuple[dt.time, dt.time] | None, tz: ZoneInfo) -> bool:
    if window is None:
        return False
    start, end = window
    now = local(moment, tz).time()
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end  # the window spans midnight


def quiet_until(moment: dt.datetime, window: tuple[dt.time, dt.time] | None, tz: ZoneInfo) -> dt.datetime:
    """The first moment at or after `moment` outside quiet hours."""
    if not in_quiet_hours(moment, window, tz):
        return moment
    assert window is not None
    here = local(moment, tz)
    end_today = dt.datetime.combine(here.date(), window[1], tzinfo=tz)
    wake = end_today if end_today > here else end_today + dt.timedelta(days=1)
    return wake.astimezone(dt.UTC)
