"""Judging a ledger file's rows: cell values first (`parse_rows`, needs nothing but the file), then
each project as it would stand after the import (`check_rows`, given what the database holds).

Every problem becomes an Issue naming the sheet, row, column and value; nothing stops at the first.

Over ~400 lines on purpose: every check a row goes through, with the reading of its cells, in the order a
person reads the sheet's error list; split, the rules for one column would sit in two files."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from bot.domain.project_code import MAX_CODE_LENGTH, bad_code_chars, canonical_code, code_problem
from bot.domain.states import ProjectStatus
from bot.ledger.format import LEDGER_BY_KEY, MILESTONE_BY_KEY, closest_county, county_key, parse_status
from bot.ledger.issues import Issue, shown
from bot.ledger.read import RawLedger, RawRow, RawSheet

CENT = Decimal("0.01")
MONEY_LIMIT = Decimal("1e12")  # Numeric(14, 2)
YEARS = range(1950, 2101)
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[\sT]+0{1,2}:00(?::00)?)?$")
_MONEY_NOISE = re.compile(r"[,\s]|万元$|万$")

# What a new project holds for a column the file does not have.
NEW_PROJECT_DEFAULTS: dict[str, object] = {
    "category": "", "unit": "", "planned_start": None, "planned_finish": None, "investment": None,
    "status": ProjectStatus.NOT_STARTED, "progress": 0, "investment_done": None, "actual_start": None,
    "actual_finish": None, "notes": "",
}


class CellError(ValueError):
    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


@dataclass
class ProjectRow:
    sheet: str
    row: int
    code: str
    values: dict[str, object]  # typed values of the file's columns; "county" is the county's name
    headers: dict[str, str]  # column key -> header as written
    raw: dict[str, object]
    bad: set[str] = field(default_factory=set)  # columns whose cell could not be read


@dataclass
class MilestoneRow:
    sheet: str
    row: int
    code: str
    name: str
    due: dt.date | None
    done: dt.date | None
    headers: dict[str, str]


@dataclass
class ParsedLedger:
    projects: list[ProjectRow]
    milestones: list[MilestoneRow] | None  # None: no milestone sheet in the file
    sheet_order: dict[str, int]

    @property
    def codes(self) -> set[str]:
        return {p.code for p in self.projects} | {m.code for m in self.milestones or ()}


@dataclass
class Plan:
    """A file that passed every check: what the import will write."""

    projects: list[ProjectRow]  # one per code, progress resolved
    milestones: dict[str, list[MilestoneRow]] | None  # project code -> its milestones in the file
    new_counties: list[str]
    warnings: list[Issue]


# ---------------------------------------------------------------- cell values


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


# ---------------------------------------------------------------- rows


def parse_rows(raw: RawLedger) -> tuple[ParsedLedger, list[Issue]]:
    """Typed values for every cell, and an Issue for every cell that has none."""
    issues: list[Issue] = []
    projects: list[ProjectRow] = []
    order = {sheet.name: i for i, sheet in enumerate(raw.ledger)}
    for sheet in raw.ledger:
        fraction = _progress_is_fraction(sheet.rows)
        for raw_row in sheet.rows:
            projects.append(_project_row(sheet, raw_row, fraction, issues))
    milestones = None
    if raw.milestones is not None:
        order[raw.milestones.name] = len(order)
        milestones = [_milestone_row(raw.milestones, r, issues) for r in raw.milestones.rows]
    return ParsedLedger(projects, milestones, order), issues


def _issue(why: str, sheet: str, row: int, header: str, value: object, /, **detail: object) -> Issue:
    return Issue(why, sheet=sheet, row=row, column=header, value=shown(value), detail=dict(detail))


def _project_row(sheet: RawSheet, raw_row: RawRow, fraction: bool, issues: list[Issue]) -> ProjectRow:
    values: dict[str, object] = {}
    bad: set[str] = set()
    for key, cell in raw_row.cells.items():
        column = LEDGER_BY_KEY[key]
        try:
            if key == "code":
                values[key] = parse_code(cell)
            elif column.kind == "text":
                text = parse_text(cell)
                if column.required and not text:
                    raise CellError("empty")
                if column.max_len and len(text) > column.max_len:
                    raise CellError("too_long", limit=column.max_len)
                values[key] = text
            elif column.kind == "date":
                values[key] = parse_date(cell)
            elif column.kind == "money":
                values[key] = parse_money(cell)
            elif column.kind == "progress":
                values[key] = parse_progress(cell, fraction=fraction)
            else:
                values[key] = parse_status_cell(cell)
        except CellError as err:
            bad.add(key)
            issues.append(_issue(err.code, sheet.name, raw_row.number, sheet.headers[key], cell, **err.detail))
    code = values.get("code")
    return ProjectRow(sheet.name, raw_row.number, code if isinstance(code, str) else "", values,
                      sheet.headers, raw_row.cells, bad)


def _milestone_row(sheet: RawSheet, raw_row: RawRow, issues: list[Issue]) -> MilestoneRow:
    texts: dict[str, str] = {}
    dates: dict[str, dt.date | None] = {"due": None, "done": None}
    for key, cell in raw_row.cells.items():
        column = MILESTONE_BY_KEY[key]
        try:
            if key == "code":
                texts[key] = parse_code(cell)
            elif column.kind == "text":
                text = parse_text(cell)
                if not text:
                    raise CellError("empty")
                if column.max_len and len(text) > column.max_len:
                    raise CellError("too_long", limit=column.max_len)
                texts[key] = text
            else:
                dates[key] = parse_date(cell)
        except CellError as err:
            issues.append(_issue(err.code, sheet.name, raw_row.number, sheet.headers[key], cell, **err.detail))
    return MilestoneRow(sheet.name, raw_row.number, texts.get("code", ""), texts.get("milestone", ""),
                        dates["due"], dates["done"], sheet.headers)


# ---------------------------------------------------------------- the projects as they would stand


def check_rows(
    parsed: ParsedLedger,
    *,
    existing: Mapping[str, Mapping[str, object]],
    counties: Mapping[str, str],
    today: dt.date,
    allow_new_counties: bool,
) -> tuple[Plan, list[Issue]]:
    """`existing`: code -> the project's current fields (dossier.TRACKED, with "county" as a name);
    `counties`: county_key(name) -> name, for every county known. Returns the plan and the issues."""
    issues: list[Issue] = []
    warnings: list[Issue] = []
    projects, also_checked = _unique_projects(parsed.projects, issues)
    new_counties: dict[str, str] = {}
    merged_by_code: dict[str, dict[str, object]] = {}
    for row in [*projects, *also_checked]:
        county = _county(row, counties, allow_new_counties, new_counties, issues)
        if county is not None:
            row.values["county"] = county
        base = dict(existing.get(row.code) or NEW_PROJECT_DEFAULTS)
        merged = {**base, **{k: v for k, v in row.values.items() if k not in row.bad}}
        if row.values.get("progress") is None and "progress" not in row.bad and (
            "progress" in row.values or row.code not in existing
        ):  # an empty (or, for a new project, absent) progress follows the status
            merged["progress"] = row.values["progress"] = 100 if merged.get("status") == ProjectStatus.COMPLETED else 0
        _consistency(row, merged, today, issues, warnings)
        merged_by_code.setdefault(row.code, merged)
    milestones = None
    if parsed.milestones is not None:
        milestones = _check_milestones(parsed.milestones, merged_by_code, existing, today, issues, warnings)
    return Plan(projects, milestones, list(new_counties.values()), ordered(warnings, parsed)), issues


def ordered(issues: Iterable[Issue], parsed: ParsedLedger) -> list[Issue]:
    """As the user reads the file: sheet by sheet, row by row (file-level issues first)."""
    order = parsed.sheet_order
    return sorted(issues, key=lambda i: (order.get(i.sheet or "", -1), i.row or 0))


def _unique_projects(rows: list[ProjectRow], issues: list[Issue]) -> tuple[list[ProjectRow], list[ProjectRow]]:
    """One row per code to write, and the rows that cannot be written but are still checked (no
    code, or a code already used in the same sheet). The same code in two sheets (an export's 全市
    and county sheets) must say the same thing there; it is then read once."""
    first: dict[str, ProjectRow] = {}
    unique: list[ProjectRow] = []
    rejected: list[ProjectRow] = []
    for row in rows:
        seen = first.get(row.code)
        if not row.code:
            if "code" not in row.bad:
                issues.append(_issue("empty", row.sheet, row.row, row.headers["code"], None))
            rejected.append(row)
        elif seen is None:
            first[row.code] = row
            unique.append(row)
        elif seen.sheet == row.sheet:
            if parse_text(row.raw.get("code")) == parse_text(seen.raw.get("code")):
                issues.append(_issue("duplicate_code", row.sheet, row.row, row.headers["code"], row.code,
                                     first_row=seen.row))
            else:  # `hc-007` and `HC-007`: two spellings of one canonical code
                issues.append(_issue("code_collision", row.sheet, row.row, row.headers["code"], row.raw.get("code"),
                                     first_row=seen.row, other_value=shown(seen.raw.get("code")), code=row.code))
            rejected.append(row)
        else:
            differing = next((k for k in row.values if k in seen.values and row.values[k] != seen.values[k]), None)
            if differing is not None:
                issues.append(_issue("code_conflict", row.sheet, row.row, row.headers[differing],
                                     row.raw.get(differing), code=row.code, other_sheet=seen.sheet,
                                     other_row=seen.row, other_value=shown(seen.raw.get(differing))))
    return unique, rejected


def _county(
    row: ProjectRow,
    counties: Mapping[str, str],
    allow_new: bool,
    new_counties: dict[str, str],
    issues: list[Issue],
) -> str | None:
    name = row.values.get("county")
    if not isinstance(name, str) or not name or "county" in row.bad:
        return None
    key = county_key(name)
    if key in counties:
        return counties[key]
    if key in new_counties:
        return new_counties[key]
    if allow_new:
        new_counties[key] = key
        return key
    issues.append(_issue("unknown_county", row.sheet, row.row, row.headers["county"], name,
                         suggestion=closest_county(name, counties), none_known=not counties))
    return None


def _header(row: ProjectRow, key: str) -> str:
    return row.headers.get(key) or LEDGER_BY_KEY[key].header


def _value(row: ProjectRow, merged: Mapping[str, object], key: str) -> object:
    return row.raw[key] if key in row.raw else merged.get(key)


def _consistency(
    row: ProjectRow, merged: Mapping[str, object], today: dt.date, issues: list[Issue], warnings: list[Issue]
) -> None:
    """The rules that tie a project's columns together, judged on the project as it would stand."""

    def fail(code: str, key: str, **detail: object) -> None:
        issues.append(_issue(code, row.sheet, row.row, _header(row, key), _value(row, merged, key), **detail))

    def ok(*keys: str) -> bool:  # a cell already reported as unreadable is not judged again
        return not row.bad.intersection(keys)

    status, progress = merged.get("status"), merged.get("progress")
    for start_key, finish_key in (("planned_start", "planned_finish"), ("actual_start", "actual_finish")):
        start, finish = merged.get(start_key), merged.get(finish_key)
        if ok(start_key, finish_key) and isinstance(start, dt.date) and isinstance(finish, dt.date) and finish < start:
            fail("finish_before_start", finish_key, start=start.isoformat(), start_column=_header(row, start_key))
    for key in ("actual_start", "actual_finish"):
        day = merged.get(key)
        if ok(key) and isinstance(day, dt.date) and day > today:
            fail("date_in_future", key, today=today.isoformat())
    if not ok("status"):
        return
    if status == ProjectStatus.COMPLETED:
        if ok("progress") and progress != 100:
            fail("completed_needs_100", "progress")
        if ok("actual_finish") and merged.get("actual_finish") is None:
            fail("completed_needs_finish", "actual_finish")
    elif status == ProjectStatus.NOT_STARTED:
        if ok("progress") and isinstance(progress, int) and progress > 0:
            fail("not_started_with_progress", "progress")
        if ok("actual_start") and merged.get("actual_start") is not None:
            fail("not_started_with_start", "actual_start")
    elif ok("actual_finish") and merged.get("actual_finish") is not None:
        fail("finish_not_completed", "actual_finish")
    investment, done = merged.get("investment"), merged.get("investment_done")
    if ok("investment", "investment_done") and isinstance(investment, Decimal) and isinstance(done, Decimal) \
            and done > investment:
        warnings.append(_issue("investment_done_exceeds", row.sheet, row.row, _header(row, "investment_done"),
                               _value(row, merged, "investment_done"), investment=shown(investment)))


def _check_milestones(
    rows: list[MilestoneRow],
    merged: Mapping[str, Mapping[str, object]],
    existing: Mapping[str, Mapping[str, object]],
    today: dt.date,
    issues: list[Issue],
    warnings: list[Issue],
) -> dict[str, list[MilestoneRow]]:
    by_code: dict[str, list[MilestoneRow]] = {}
    seen: dict[tuple[str, str], int] = {}

    def note(target: list[Issue], why: str, ms: MilestoneRow, key: str, value: object, **detail: object) -> None:
        header = ms.headers.get(key) or MILESTONE_BY_KEY[key].header
        target.append(_issue(why, ms.sheet, ms.row, header, value, **detail))

    for ms in rows:
        if not ms.code or not ms.name:
            continue  # already reported as an empty cell
        project = merged.get(ms.code) or existing.get(ms.code)
        if project is None:
            note(issues, "unknown_project", ms, "code", ms.code)
            continue
        if (ms.code, ms.name) in seen:
            note(issues, "duplicate_milestone", ms, "milestone", ms.name, first_row=seen[(ms.code, ms.name)])
            continue
        seen[(ms.code, ms.name)] = ms.row
        if ms.done is not None and ms.done > today:
            note(issues, "date_in_future", ms, "done", ms.done, today=today.isoformat())
        start, finish = project.get("planned_start"), project.get("planned_finish")
        if ms.due is not None and (
            (isinstance(start, dt.date) and ms.due < start) or (isinstance(finish, dt.date) and ms.due > finish)
        ):
            note(warnings, "milestone_outside_plan", ms, "due", ms.due, code=ms.code,
                 start=shown(start) or "—", finish=shown(finish) or "—")
        by_code.setdefault(ms.code, []).append(ms)
    return by_code

