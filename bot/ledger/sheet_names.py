"""Worksheet names Excel accepts, made from any text (a county's name is whatever the ledger said).

Excel's rules: 1 to 31 UTF-16 code units (an emoji is two), none of `[ ] : * ? / \\`, no apostrophe at
either end, not the reserved name "History", and unique regardless of case. A name that breaks one is
mended, never refused: a county named `a/b` gets the sheet `a_b`; its rows still say `a/b`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_UNITS = 31
_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_RESERVED = frozenset({"history"})
PLACEHOLDER = "_"


def utf16_units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _fit(text: str, units: int) -> str:
    """The longest start of `text` within `units` UTF-16 units (an emoji is never cut in half)."""
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:i]
    return text


def _key(name: str) -> str:
    return name.casefold()  # Excel compares sheet names without case


def safe_sheet_name(title: str) -> str:
    """`title` as Excel allows it (not yet made unique among a workbook's other names)."""
    name = _fit(_FORBIDDEN.sub("_", title).strip("'"), MAX_UNITS).strip("'")
    if not name or _key(name) in _RESERVED:
        name = _fit(f"{name}{PLACEHOLDER}", MAX_UNITS)
    return name


def safe_sheet_names(titles: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """One valid, distinct name per title, in order; a clash gets `~2`, `~3` … within the 31 units.
    `taken`: names already in the workbook."""
    used = {_key(t) for t in taken}
    names: list[str] = []
    for title in titles:
        base = safe_sheet_name(title)
        name, n = base, 2
        while _key(name) in used:
            suffix = f"~{n}"
            name, n = _fit(base, MAX_UNITS - len(suffix)).rstrip("'") + suffix, n + 1
        used.add(_key(name))
        names.append(name)
    return names
