"""Exporting the ledger: an .xlsx with the whole city (全市), one sheet per county (一县一清单) and
the milestones (节点), or a .csv (UTF-8 with BOM, so Excel shows the Chinese) with a -milestones.csv
beside it. Headers are `项目编号 code` style, which `qingshui import` reads back unchanged."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from bot.domain.columns import display_width
from bot.ledger.dossier import to_text
from bot.ledger.format import (
    CITY_SHEET,
    LEDGER_COLUMNS,
    MILESTONE_COLUMNS,
    MILESTONE_SHEET,
    STATUS_LABELS,
    Column,
    neutralise_formula,
)
from bot.ledger.issues import Issue, LedgerRejected
from bot.ledger.read import CSV_SUFFIXES, XLSX_SUFFIXES, Progress
from bot.ledger.sheet_names import safe_sheet_names
from bot.store.models import County, Milestone, Project

EXCEL_EPOCH = dt.date(1899, 12, 30)  # day 0 of Excel's date serials (1900 system)
WIDTH_SAMPLE = 1000  # rows looked at to size a column
MAX_WIDTH = 48

# The milestone sheet shows the project's name beside its code, for the reader; import ignores it.
_PROJECT_NAME = Column("project_name", "项目名称", "text")
MILESTONE_EXPORT_COLUMNS = (MILESTONE_COLUMNS[0], _PROJECT_NAME, *MILESTONE_COLUMNS[1:])


@dataclass(frozen=True)
class Sheet:
    title: str
    columns: tuple[Column, ...]
    rows: list[list[Any]]
    fixed: bool = False  # a sheet an import finds by its name (全市, 节点): named before the counties


async def export_ledger(
    session: AsyncSession,
    path: Path,
    *,
    county_id: int | None = None,
    lang: str = "zh",
    progress: Progress | None = None,
) -> Path:
    """Write the ledger (one county's only, with `county_id`) to `path` (.xlsx or .csv); returns the path.

    The workbook a weekly digest attaches: city leaders get every county, a county leader theirs."""
    suffix = path.suffix.lower()
    if suffix not in XLSX_SUFFIXES + CSV_SUFFIXES:
        raise LedgerRejected([Issue("unknown_extension", value=path.name, detail={"suffix": path.suffix})])
    county_query = select(County).order_by(County.sort_order, County.name)
    if county_id is not None:
        county_query = county_query.where(County.id == county_id)
    counties = list(await session.scalars(county_query))
    projects = await _project_rows(session, county_id, lang)
    milestones = await _milestone_rows(session, county_id)
    city = Sheet(CITY_SHEET.get(lang, CITY_SHEET["zh"]), LEDGER_COLUMNS, [row for _, row in projects], fixed=True)
    ms_sheet = Sheet(MILESTONE_SHEET.get(lang, MILESTONE_SHEET["zh"]), MILESTONE_EXPORT_COLUMNS, milestones,
                     fixed=True)
    try:
        if suffix in CSV_SUFFIXES:
            await asyncio.to_thread(write_csv, path, city, ms_sheet)
        else:
            sheets = [] if county_id is not None else [city]
            for county in counties:
                rows = [row for cid, row in projects if cid == county.id]
                sheets.append(Sheet(county.name, LEDGER_COLUMNS, rows))
            sheets.append(ms_sheet)
            await asyncio.to_thread(write_xlsx, path, sheets, progress)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LedgerRejected([Issue("file_unwritable", value=str(path), detail={"reason": reason})]) from exc
    return path


async def _project_rows(session: AsyncSession, county_id: int | None, lang: str) -> list[tuple[int, list[Any]]]:
    fields = [getattr(Project, c.key) for c in LEDGER_COLUMNS if c.key != "county"]
    query = (
        select(Project.county_id, County.name, *fields)
        .join(County, County.id == Project.county_id)
        .order_by(County.sort_order, County.name, Project.code)
    )
    if county_id is not None:
        query = query.where(Project.county_id == county_id)
    rows = []
    for record in await session.execute(query):
        values = dict(zip([c.key for c in LEDGER_COLUMNS if c.key != "county"], record[2:], strict=True))
        values["county"] = record[1]
        if lang != "en":
            values["status"] = STATUS_LABELS.get(values["status"], values["status"])
        rows.append((record[0], [values[c.key] for c in LEDGER_COLUMNS]))
    return rows


async def _milestone_rows(session: AsyncSession, county_id: int | None) -> list[list[Any]]:
    query = select(Project.code, Project.name, Milestone.name, Milestone.due, Milestone.done).join(
        Project, Project.id == Milestone.project_id
    )
    if county_id is not None:
        query = query.where(Project.county_id == county_id)
    rows = [list(r) for r in await session.execute(query)]
    # by project, then due date (undated last), the same on every database
    rows.sort(key=lambda r: (r[0], r[3] is None, r[3] or dt.date.min, r[2]))
    return rows


def _sheet_titles(sheets: list[Sheet]) -> list[str]:
    """Names Excel accepts (bot/ledger/sheet_names.py). The city and milestone sheets are named first, so a
    county called 节点 or 全市 cannot take the name an import recognises them by."""
    order = sorted(range(len(sheets)), key=lambda i: not sheets[i].fixed)
    names = safe_sheet_names([sheets[i].title for i in order])
    by_index = dict(zip(order, names, strict=True))
    return [by_index[i] for i in range(len(sheets))]


def _widths(sheet: Sheet) -> list[float]:
    widths = []
    for i, column in enumerate(sheet.columns):
        sample = [display_width(_cell_text(row[i])) for row in sheet.rows[:WIDTH_SAMPLE]]
        widest = max([display_width(column.header), *sample])
        widths.append(min(MAX_WIDTH, max(10, widest + 2)))
    return widths


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class Formats:
    def __init__(self, book: Workbook) -> None:
        self.header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                                       "valign": "vcenter", "align": "center"})
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.money = book.add_format({"num_format": "#,##0.00"})
        self.whole = book.add_format({"num_format": "0"})


def write_xlsx(path: Path, sheets: list[Sheet], progress: Progress | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,  # shared strings: faster here
                                           "strings_to_urls": False})
    formats = Formats(book)
    total = sum(len(s.rows) for s in sheets)
    done = 0
    widths: dict[tuple[Column, ...], list[float]] = {}  # sized once per kind of sheet, on the first (widest)
    for sheet, title in zip(sheets, _sheet_titles(sheets), strict=True):
        ws = book.add_worksheet(title)
        if sheet.columns not in widths or not sheet.rows:
            widths[sheet.columns] = _widths(sheet)
        _write_sheet(ws, sheet, formats, widths[sheet.columns])
        done += len(sheet.rows)
        if progress:
            progress("export", done, total)
    book.close()


def write_header(ws: Worksheet, columns: tuple[Column, ...], widths: list[float], fmt: Format) -> None:
    for col, (column, width) in enumerate(zip(columns, widths, strict=True)):
        ws.set_column(col, col, width)
        ws.write_string(0, col, column.header, fmt)
    ws.set_row(0, 30)
    ws.freeze_panes(1, 0)


def _write_sheet(ws: Worksheet, sheet: Sheet, formats: Formats, widths: list[float]) -> None:
    write_header(ws, sheet.columns, widths, formats.header)
    kinds = [c.kind for c in sheet.columns]
    for r, row in enumerate(sheet.rows, 1):
        for c, value in enumerate(row):
            if value is None or value == "":
                continue
            kind = kinds[c]
            if kind == "date":
                ws.write_number(r, c, (value - EXCEL_EPOCH).days, formats.date)  # a real date cell
            elif kind == "money":
                ws.write_number(r, c, float(value), formats.money)
            elif kind == "progress":
                ws.write_number(r, c, int(value), formats.whole)
            else:
                ws.write_string(r, c, str(value))
    if sheet.rows:
        ws.autofilter(0, 0, len(sheet.rows), len(sheet.columns) - 1)


def milestones_csv_path(path: Path) -> Path:
    """`ledger.csv` -> `ledger-milestones.csv`, beside it."""
    return path.with_name(f"{path.stem}-milestones{path.suffix}")


def write_csv(path: Path, city: Sheet, milestones: Sheet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, sheet in ((path, city), (milestones_csv_path(path), milestones)):
        with target.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.header for c in sheet.columns])
            writer.writerows([_csv_text(v) for v in row] for row in sheet.rows)


def _csv_text(value: object) -> str:
    if isinstance(value, Decimal):
        return to_text(value) or ""
    if isinstance(value, str):
        return neutralise_formula(value)
    return _cell_text(value)
