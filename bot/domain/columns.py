"""Plain-text tables for a terminal, where a Chinese character takes two columns."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def display_width(text: str) -> int:
    """Columns the text takes in a terminal (East Asian wide and full-width characters count two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def format_table(rows: Sequence[Sequence[str]], *, right: Sequence[bool] = (), gap: str = "  ") -> list[str]:
    """Lines with every column aligned; `right[i]` right-aligns column i (numbers)."""
    if not rows:
        return []
    count = max(len(r) for r in rows)
    widths = [max(display_width(r[i]) if i < len(r) else 0 for r in rows) for i in range(count)]
    lines = []
    for row in rows:
        cells = [
            pad(row[i] if i < len(row) else "", widths[i], right=i < len(right) and right[i]) for i in range(count)
        ]
        lines.append(gap.join(cells).rstrip())
    return lines
