"""Whatever a ledger holds, its export works and reads back unchanged: county names Excel cannot take as
sheet names, and text a spreadsheet would run as a formula in a CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ledger.format import neutralise_formula, restore_formula
from bot.ledger.io import export_ledger, import_ledger, milestones_csv_path
from bot.ledger.sheet_names import safe_sheet_name, safe_sheet_names, utf16_units
from bot.store.models import Project
from tests import factories
from tests.ledger_files import NOW, ledger_state

Maker = async_sessionmaker[AsyncSession]
EMOJI_20 = "🌊" * 20  # 20 code points, 40 UTF-16 units
ODD_COUNTIES = ("'祁县'", EMOJI_20, "a/b", "A/B", "节点", "History", "[x]:*?\\")


def test_sheet_names_follow_excels_rules() -> None:
    names = safe_sheet_names(["全市", *ODD_COUNTIES, "节点"])
    assert names[:4] == ["全市", "祁县", "🌊" * 15, "a_b"]
    assert names[4] == "A_B~2"  # Excel compares names without case
    for name in names:
        assert 1 <= utf16_units(name) <= 31
        assert not set(name) & set("[]:*?/\\") and not name.startswith("'") and not name.endswith("'")
    assert len({n.casefold() for n in names}) == len(names)
    assert safe_sheet_name("'''") == "_" and safe_sheet_name("history") == "history_"
    assert safe_sheet_name("x" * 40 + "🌊") == "x" * 31


async def _odd_ledger(sessionmaker: Maker) -> None:
    async with sessionmaker() as s:
        for order, name in enumerate(ODD_COUNTIES, 1):
            county = await factories.county(s, name, order)
            await factories.project(s, county, f"ODD-{order}", name=f"{name} 工程", milestones=(
                ("管网铺设", None, None),))
        await s.commit()


async def test_a_workbook_of_odd_county_names_opens_and_imports_back_unchanged(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    await _odd_ledger(sessionmaker)
    async with sessionmaker() as s:
        before = await ledger_state(s)
        path = await export_ledger(s, tmp_path / "odd.xlsx")
    book = load_workbook(path)
    assert book.sheetnames[0] == "全市" and book.sheetnames[-1] == "节点"  # an import finds them by name
    assert len(book.sheetnames) == 2 + len(ODD_COUNTIES)
    assert [row[2].value for row in book["全市"].iter_rows(min_row=2)] == list(ODD_COUNTIES)  # the real names
    assert book["🌊" * 15]["C2"].value == EMOJI_20
    async with sessionmaker() as s:
        again = await import_ledger(s, path, now=NOW)
        assert (again.created, again.updated, again.change_rows, again.milestones_changed) == (0, 0, 0, 0)
        assert await ledger_state(s) == before


def test_formula_cells_are_neutralised_and_restored_exactly() -> None:
    for text in ("=HYPERLINK(\"http://x\",\"y\")", "+1 -2 @x", "-5", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise_formula(text) == "'" + text
        assert restore_formula(neutralise_formula(text)) == text
    for text in ("祁县", "'quoted'", "'", "1+1", ""):
        assert neutralise_formula(text) == text and restore_formula(text) == text


async def test_a_csv_export_runs_no_formula_and_imports_back_unchanged(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        county = await factories.county(s, "祁县", 1)
        await factories.project(s, county, "JZ-001", name='=HYPERLINK("http://evil.example","点我")',
                                milestones=(("-节点一", None, None),))
        await s.commit()
        project = await s.scalar(select(Project))
        assert project is not None
        project.notes, project.category = "+1 -2 @x", "@分类"
        await s.commit()
        before = await ledger_state(s)
        path = await export_ledger(s, tmp_path / "out.csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        [_, row] = list(csv.reader(handle))
    with milestones_csv_path(path).open(encoding="utf-8-sig", newline="") as handle:
        [_, ms_row] = list(csv.reader(handle))
    cells = [*row, *ms_row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]  # nothing a spreadsheet would run
    assert "'=HYPERLINK(" in row[1] and "'+1 -2 @x" in row and "'-节点一" in ms_row
    async with sessionmaker() as s:
        again = await import_ledger(s, path, milestones_path=milestones_csv_path(path), now=NOW)
        assert (again.updated, again.change_rows, again.milestones_changed) == (0, 0, 0)
        assert await ledger_state(s) == before
