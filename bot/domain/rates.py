"""Completion and start rates, as the programme reports them (whole per cent, half up)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from bot.domain.states import ProjectStatus


def percent(part: int, whole: int) -> int:
    """Whole per cent rounded half up (Python's round() would round 62.5 to 62)."""
    if whole <= 0:
        return 0
    value = Decimal(part * 100) / Decimal(whole)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Totals:
    total: int
    completed: int
    started: int  # started or completed: the programme counts a finished project as started

    @property
    def not_started(self) -> int:
        return self.total - self.started

    @property
    def in_progress(self) -> int:
        return self.started - self.completed

    @property
    def completion_rate(self) -> int:
        return percent(self.completed, self.total)

    @property
    def start_rate(self) -> int:
        return percent(self.started, self.total)


def totals(statuses: Iterable[str]) -> Totals:
    total = completed = started = 0
    for status in statuses:
        total += 1
        if status == ProjectStatus.COMPLETED:
            completed += 1
            started += 1
        elif status == ProjectStatus.STARTED:
            started += 1
    return Totals(total=total, completed=completed, started=started)
