"""The empty workbook people fill in: the ledger and milestone sheets with their header rows,
drop-downs for county and status, and a sheet of instructions. Left empty it imports as "nothing
to import"; the instructions sheet and the hidden lists are not read by the import."""

from __future__ import annotations

import asyncio
from pathlib import Path

import xlsxwriter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ledger.export import Formats, write_header
from bot.ledger.format import (
    JINZHONG_COUNTIES,
    LEDGER_BY_KEY,
    LEDGER_COLUMNS,
    LEDGER_SHEET,
    MILESTONE_COLUMNS,
    MILESTONE_SHEET,
    NOTES_SHEET,
    STATUS_LABELS,
)
from bot.ledger.issues import Issue, LedgerRejected
from bot.ledger.read import XLSX_SUFFIXES
from bot.store.models import County
from bot.texts import render

ROWS_WITH_DROPDOWNS = 2000
LISTS_SHEET = "_lists"  # hidden; sheets whose names start with "_" are never read as a ledger


async def write_template(session: AsyncSession, path: Path, *, lang: str = "zh") -> Path:
    if path.suffix.lower() not in XLSX_SUFFIXES:
        raise LedgerRejected([Issue("template_needs_xlsx", value=path.name)])
    names = list(await session.scalars(select(County.name).order_by(County.sort_order, County.name)))
    notes = render(lang, "cli_ledger.template_notes").splitlines()
    try:
        await asyncio.to_thread(_write, path, names or list(JINZHONG_COUNTIES), notes, lang)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LedgerRejected([Issue("file_unwritable", value=str(path), detail={"reason": reason})]) from exc
    return path


def _write(path: Path, counties: list[str], notes: list[str], lang: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(str(path))
    formats = Formats(book)
    ledger = book.add_worksheet(LEDGER_SHEET.get(lang, LEDGER_SHEET["zh"]))
    write_header(ledger, LEDGER_COLUMNS, [max(12, len(c.header) + 4) for c in LEDGER_COLUMNS], formats.header)
    milestones = book.add_worksheet(MILESTONE_SHEET.get(lang, MILESTONE_SHEET["zh"]))
    write_header(milestones, MILESTONE_COLUMNS, [max(14, len(c.header) + 6) for c in MILESTONE_COLUMNS],
                 formats.header)
    guide = book.add_worksheet(NOTES_SHEET.get(lang, NOTES_SHEET["zh"]))
    guide.set_column(0, 0, 100)
    for row, line in enumerate(notes):
        guide.write_string(row, 0, line)

    lists = book.add_worksheet(LISTS_SHEET)
    statuses = list(STATUS_LABELS.values()) if lang != "en" else list(STATUS_LABELS)
    for row, name in enumerate(counties):
        lists.write_string(row, 0, name)
    for row, label in enumerate(statuses):
        lists.write_string(row, 1, label)
    lists.hide()

    def dropdown(key: str, source: str) -> None:
        col = LEDGER_COLUMNS.index(LEDGER_BY_KEY[key])
        ledger.data_validation(1, col, ROWS_WITH_DROPDOWNS, col, {"validate": "list", "source": source})

    dropdown("county", f"={LISTS_SHEET}!$A$1:$A${len(counties)}")
    dropdown("status", f"={LISTS_SHEET}!$B$1:$B${len(statuses)}")
    for key in ("planned_start", "planned_finish", "actual_start", "actual_finish"):
        col = LEDGER_COLUMNS.index(LEDGER_BY_KEY[key])
        ledger.set_column(col, col, None, formats.date)
    for col in (2, 3):
        milestones.set_column(col, col, None, formats.date)
    ledger.activate()
    book.close()
