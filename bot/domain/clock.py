"""The one notion of "now": an aware UTC datetime from a callable, so tests and the demo hand in their own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
