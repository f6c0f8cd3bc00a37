"""Reading a ledger file (.xlsx or .csv) into raw rows keyed by column, with the row numbers the
user sees. No judgement of values here (that is ledger_validate), only of the file's shape:
present, readable, with recognisable header rows and the required columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_calamine import CalamineWorkbook

from bot.ledger.format import (
    LEDGER_COLUMNS,
    MILESTONE_COLUMNS,
    Column,
    is_milestone_sheet,
    match_header,
    restore_formula,
)
from bot.ledger.issues import Issue, LedgerRejected, shown

XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv",)
HEADER_SEARCH_ROWS = 10  # a title or a note may stand above the header row

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class RawRow:
    number: int  # as the spreadsheet shows it (1-based, header rows counted)
    cells: dict[str, object]  # column key -> the cell's value; None when empty


@dataclass
class RawSheet:
    name: str  # the sheet's name, or the CSV file's name
    milestones: bool
    headers: dict[str, str] = field(default_factory=dict)  # column key -> header as written
    rows: list[RawRow] = field(default_factory=list)


@dataclass
class RawLedger:
    ledger: list[RawSheet]
    milestones: RawSheet | None  # None: the file has no milestone sheet, so milestones stay as they are

    @property
    def row_count(self) -> int:
        return sum(len(s.rows) for s in self.ledger) + (len(self.milestones.rows) if self.milestones else 0)


Grid = list[list[object]]


def check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in XLSX_SUFFIXES + CSV_SUFFIXES:
        raise LedgerRejected([Issue("unknown_extension", value=path.name, detail={"suffix": path.suffix})])
    return suffix


def read_ledger_file(path: Path, milestones_path: Path | None = None, progress: Progress | None = None) -> RawLedger:
    """Read the file (and an optional separate milestone file); raise LedgerRejected for a file
    that is missing, unreadable or lacks required columns."""
    suffix = check_suffix(path)
    grids = _read_grids(path, suffix)
    issues: list[Issue] = []
    ledger: list[RawSheet] = []
    milestones: RawSheet | None = None
    done = 0
    total = sum(len(g) for _, g in grids)
    for name, grid in grids:
        as_milestones = suffix in XLSX_SUFFIXES and is_milestone_sheet(name)
        if as_milestones and (milestones is not None or milestones_path is not None):
            continue  # a separate --milestones file wins over the workbook's own sheet
        sheet = _sheet(name, grid, as_milestones, issues, explicit=suffix in CSV_SUFFIXES or as_milestones)
        if sheet is not None:
            if as_milestones:
                milestones = sheet
            else:
                ledger.append(sheet)
        done += len(grid)
        if progress:
            progress("read", done, total)
    if not ledger and not issues:
        issues.append(Issue("no_ledger_sheet", value=path.name,
                            detail={"headers": [c.header for c in LEDGER_COLUMNS if c.required]}))
    if milestones_path is not None:
        ms_grids = _read_grids(milestones_path, check_suffix(milestones_path))
        name, grid = next(((n, g) for n, g in ms_grids if is_milestone_sheet(n)), ms_grids[0])
        milestones = _sheet(milestones_path.name if len(ms_grids) == 1 else name, grid, True, issues, explicit=True)
    if issues:
        raise LedgerRejected(issues)
    return RawLedger(ledger, milestones)


def _read_grids(path: Path, suffix: str) -> list[tuple[str, Grid]]:
    if not path.is_file():
        raise LedgerRejected([Issue("file_missing", value=str(path))])
    try:
        if suffix in CSV_SUFFIXES:
            return [(path.name, _read_csv(path))]
        return _read_xlsx(path)
    except LedgerRejected:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LedgerRejected([Issue("file_unreadable", value=str(path), detail={"reason": reason})]) from exc
    except Exception as exc:  # calamine's errors for a damaged or mislabelled file
        raise LedgerRejected([Issue("file_corrupt", value=str(path), detail={"reason": str(exc)[:200]})]) from exc


def _read_xlsx(path: Path) -> list[tuple[str, Grid]]:
    book = CalamineWorkbook.from_path(str(path))
    grids = []
    for meta in book.sheets_metadata:
        if str(meta.visible).rsplit(".", 1)[-1] != "Visible" or meta.name.startswith("_"):
            continue  # the template's hidden drop-down lists
        sheet = book.get_sheet_by_name(meta.name)
        grids.append((meta.name, sheet.to_python(skip_empty_area=False)))
    return grids


def _read_csv(path: Path) -> Grid:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel on a Chinese Windows saves CSV as GBK
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly any byte string
        raise LedgerRejected([Issue("file_encoding", value=path.name)])
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [[restore_formula(cell) for cell in row] for row in reader]


def _header_row(grid: Grid, columns_are_milestones: bool) -> int | None:
    for index, row in enumerate(grid[:HEADER_SEARCH_ROWS]):
        found = {match_header(cell, milestones=columns_are_milestones) for cell in row} - {None}
        if len(found) >= 2:
            return index
    return None


def _sheet(name: str, grid: Grid, milestones: bool, issues: list[Issue], *, explicit: bool) -> RawSheet | None:
    """The sheet's rows by column key; None for a sheet that holds no ledger (a notes sheet).
    `explicit`: this sheet must be a ledger (a CSV, a milestone sheet), so a missing header is an issue."""
    columns: tuple[Column, ...] = MILESTONE_COLUMNS if milestones else LEDGER_COLUMNS
    header_at = _header_row(grid, milestones)
    sheet = RawSheet(name=name, milestones=milestones)
    if header_at is None:
        if explicit:
            issues.extend(Issue("missing_column", sheet=name, column=c.header) for c in columns if c.required)
            return sheet
        return None
    positions: dict[int, str] = {}
    for col, cell in enumerate(grid[header_at]):
        key = match_header(cell, milestones=milestones)
        if key is None:
            continue  # a column Qingshui does not read
        if key in sheet.headers:
            issues.append(Issue("duplicate_column", sheet=name, row=header_at + 1, column=shown(cell).strip(),
                                detail={"other": sheet.headers[key]}))
            continue
        sheet.headers[key] = " ".join(shown(cell).split())
        positions[col] = key
    issues.extend(
        Issue("missing_column", sheet=name, row=header_at + 1, column=c.header)
        for c in columns
        if c.required and c.key not in sheet.headers
    )
    for index in range(header_at + 1, len(grid)):
        row = grid[index]
        cells: dict[str, object] = {}
        for col, key in positions.items():
            value = row[col] if col < len(row) else None
            if isinstance(value, str) and not value.strip():
                value = None
            cells[key] = value
        if any(v is not None for v in cells.values()):
            sheet.rows.append(RawRow(number=index + 1, cells=cells))
    return sheet
