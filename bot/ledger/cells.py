"""A ledger file's cell values read as the ledger means them: text, dates (Excel dates, `2026年3月31日`,
`2026/3/31`), money in 万元 (`1,200`, `860.5万元`), progress (`80`, `80%`, a cell formatted as a
percentage), project codes and statuses. A value that is not one raises CellError with the problem's
code; bot.ledger.validate turns it into an Issue naming the sheet, row and column."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from bot.domain.project_code import MAX_CODE_LENGTH, bad_code_chars, canonical_code, code_problem
from bot.ledger.format import parse_status
from bot.ledger.issues import shown
from bot.ledger.read import RawRow

CENT = Decimal("0.01")
MONEY_LIMIT = Decimal("1e12")  # Numeric(14, 2)
YEARS = range(1950, 2101)
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[\sT]+0{1,2}:00(?::00)?)?$")
_MONEY_NOISE = re.compile(r"[,\s]|万元$|万$")


class CellError(ValueError):
    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def parse_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return shown(value)
    return str(value).strip()


def parse_date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        match = _DATE.match(unicodedata.normalize("NFKC", value).strip())
        if not match:
            raise CellError("bad_date")
        try:
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise CellError("impossible_date") from None
    else:
        raise CellError("bad_date")
    if day.year not in YEARS:
        raise CellError("bad_date")
    return day


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        number = Decimal(_MONEY_NOISE.sub("", unicodedata.normalize("NFKC", value)))
    else:
        raise InvalidOperation
    if not number.is_finite():
        raise InvalidOperation
    return number


def parse_money(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        number = _decimal(value)
    except InvalidOperation:
        raise CellError("not_a_number") from None
    if number < 0:
        raise CellError("negative")
    if number >= MONEY_LIMIT:
        raise CellError("too_large")
    return number.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_progress(value: object, *, fraction: bool = False) -> int | None:
    """Whole per cent 0–100. `fraction`: the column holds Excel percentages (0.8 shown as 80%)."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            number = _decimal(unicodedata.normalize("NFKC", value).strip().removesuffix("%"))
        else:
            number = _decimal(value) * (100 if fraction else 1)
    except InvalidOperation:
        raise CellError("progress_not_number") from None
    if not 0 <= number <= 100:
        raise CellError("progress_range")
    if number != number.to_integral_value():
        raise CellError("progress_not_whole")
    return int(number)


def parse_code(value: object) -> str:
    """The canonical project code of a cell (bot/domain/project_code.py), or why it cannot be one."""
    code = canonical_code(parse_text(value))
    problem = code_problem(code)
    if problem == "too_long":
        raise CellError(problem, limit=MAX_CODE_LENGTH)
    if problem == "bad_code_chars":
        raise CellError(problem, chars=bad_code_chars(code))
    if problem is not None:
        raise CellError(problem)
    return code


def parse_status_cell(value: object) -> str:
    if value is None:
        raise CellError("empty")
    status = parse_status(parse_text(value))
    if status is None:
        raise CellError("bad_status")
    return status


def _progress_is_fraction(rows: Iterable[RawRow]) -> bool:
    """Excel keeps a cell typed as `80%` as 0.8: a numeric column that never exceeds 1 and holds a
    fraction is read as per cent. (A text cell `80%` or `80` is always per cent.)"""
    numbers = [v for r in rows if isinstance(v := r.cells.get("progress"), int | float) and not isinstance(v, bool)]
    return bool(numbers) and all(0 <= v <= 1 for v in numbers) and any(0 < v < 1 for v in numbers)
