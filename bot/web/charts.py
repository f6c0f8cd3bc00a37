"""The cockpit's pictures as inline SVG geometry: coordinates here, every word and the drawing in the
templates (templates/<lang>/web_*.html). No script, no image file, nothing fetched: a page is one request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.forecast import Forecast, Reading
from bot.web.views import TrendPoint

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 36  # margins inside the viewBox, for the axes' labels


def _y(percent: float) -> float:
    return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - percent / 100), 1)


def _ticks_y() -> list[tuple[float, int]]:
    return [(_y(p), p) for p in (0, 25, 50, 75, 100)]


@dataclass(frozen=True)
class TrendChart:
    completion: str  # polyline points
    start: str
    dots: list[tuple[float, float, float, str, int, int]]  # x, y completion, y start, month, rates
    ticks_x: list[tuple[float, str]]
    ticks_y: list[tuple[float, int]]
    width: int = WIDTH
    height: int = HEIGHT


def trend_chart(points: Sequence[TrendPoint]) -> TrendChart:
    """完工率 and 开工率 month by month."""
    span = max(len(points) - 1, 1)
    inner = WIDTH - LEFT - RIGHT

    def x(i: int) -> float:
        return round(LEFT + inner * (i / span if len(points) > 1 else 0.5), 1)

    dots = [(x(i), _y(p.totals.completion_rate), _y(p.totals.start_rate), p.month, p.totals.completion_rate,
             p.totals.start_rate) for i, p in enumerate(points)]
    every = max(1, -(-len(points) // 8))  # at most about eight month labels
    last = len(points) - 1
    # the last month always, and no label crowding it
    ticks = [(x(i), p.month) for i, p in enumerate(points) if (i % every == 0 and last - i >= every) or i == last]
    return TrendChart(completion=" ".join(f"{d[0]},{d[1]}" for d in dots),
                      start=" ".join(f"{d[0]},{d[2]}" for d in dots), dots=dots, ticks_x=ticks, ticks_y=_ticks_y())


@dataclass(frozen=True)
class PlanChart:
    plan: str  # the linear plan's polyline
    reported: str  # the readings' polyline
    dots: list[tuple[float, float, str, int]]  # x, y, day, progress
    forecast: str | None  # dashed: from the latest reading to 100 % at the forecast finish
    today: float
    milestones: list[tuple[float, bool, str]]  # x, done, name
    ticks_x: list[tuple[float, str]]
    ticks_y: list[tuple[float, int]]
    width: int = WIDTH
    height: int = HEIGHT


def plan_chart(
    planned_start: dt.date | None, planned_finish: dt.date | None, readings: Sequence[Reading],
    outlook: Forecast | None, today: dt.date, milestones: Sequence[tuple[str, dt.date | None, dt.date | None]],
) -> PlanChart | None:
    """The plan against the reported progress over time; None without a plan."""
    if planned_start is None or planned_finish is None or planned_finish <= planned_start:
        return None
    finish = outlook.finish if outlook is not None and outlook.finish is not None else planned_finish
    days = [planned_start, planned_finish, today, min(finish, planned_finish + dt.timedelta(days=3 * 365))]
    days += [r.day for r in readings]
    first, last = min(days), max(days)
    span = max((last - first).days, 1)
    inner = WIDTH - LEFT - RIGHT

    def x(day: dt.date) -> float:
        return round(LEFT + inner * (min(max(day, first), last) - first).days / span, 1)

    dots = [(x(r.day), _y(r.progress), r.day.isoformat(), r.progress) for r in readings]
    dashed = None
    if readings and outlook is not None and outlook.finish is not None and readings[-1].progress < 100:
        latest = readings[-1]
        dashed = f"{x(latest.day)},{_y(latest.progress)} {x(outlook.finish)},{_y(100)}"
    quarters = [dt.date(y, m, 1) for y in range(first.year, last.year + 1) for m in (1, 4, 7, 10)]
    ticks = [(x(d), f"{d.year}-{d.month:02d}") for d in quarters if first <= d <= last]
    if len(ticks) > 8:
        ticks = ticks[:: -(-len(ticks) // 8)]
    return PlanChart(
        plan=f"{x(planned_start)},{_y(0)} {x(planned_finish)},{_y(100)}",
        reported=" ".join(f"{d[0]},{d[1]}" for d in dots), dots=dots, forecast=dashed, today=x(today),
        milestones=[(x(due), done is not None, name) for name, due, done in milestones if due is not None],
        ticks_x=ticks, ticks_y=_ticks_y(),
    )
