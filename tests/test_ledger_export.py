"""Exporting the ledger and reading it back: the workbook's sheets and styling, the CSV pair, the
round trip that changes nothing, the template, and the figures the sample ledger reproduces."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ledger.format import JINZHONG_COUNTIES
from bot.ledger.io import export_ledger, import_ledger, import_sample, milestones_csv_path, write_template
from bot.ledger.queries import city_figures, county_figures
from bot.store.models import County
from tests.ledger_files import NOW, ledger_state

Maker = async_sessionmaker[AsyncSession]


async def test_the_sample_reproduces_the_programmes_figures(sessionmaker: Maker) -> None:
    result = await import_sample(sessionmaker, now=NOW)
    assert (result.created, result.counties_created) == (44, list(JINZHONG_COUNTIES))
    async with sessionmaker() as s:
        city = await city_figures(s)
        assert (city.total, city.completed, city.started) == (44, 28, 41)
        assert (city.completion_rate, city.start_rate) == (64, 93)
        counties = await county_figures(s)
        assert [c.name for c in counties] == list(JINZHONG_COUNTIES)
        assert sum(c.total for c in counties) == 44 and sum(c.completed for c in counties) == 28
        qixian = next(c for c in counties if c.name == "祁县")
        assert (qixian.total, qixian.completed, qixian.started, qixian.not_started) == (4, 2, 4, 0)
        assert (qixian.completion_rate, qixian.start_rate) == (50, 100)
        assert await city_figures(s, county_id=qixian.county_id) == qixian.totals


async def test_the_workbook_has_the_city_each_county_and_the_milestones(sessionmaker: Maker, tmp_path: Path) -> None:
    await import_sample(sessionmaker, now=NOW)
    async with sessionmaker() as s:
        path = await export_ledger(s, tmp_path / "out" / "台账.xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["全市", *JINZHONG_COUNTIES, "节点"]
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2"
        assert ws.column_dimensions["A"].width >= 10
    city = book["全市"]
    header = [c.value for c in city[1]]
    assert header[:3] == ["项目编号 code", "项目名称 name", "县区 county"]
    assert city.max_row == 45
    first = {h: c for h, c in zip(header, city[2], strict=True)}
    assert isinstance(first["计划开工 planned_start"].value, dt.datetime)
    assert first["计划开工 planned_start"].number_format == "yyyy-mm-dd"
    assert isinstance(first["总投资(万元) investment"].value, int | float)
    assert isinstance(first["形象进度(%) progress"].value, int)
    qixian = book["祁县"]
    assert {row[2].value for row in qixian.iter_rows(min_row=2)} == {"祁县"}
    assert qixian.max_row == 5
    assert book["节点"].max_row == 56  # 55 milestones of the 16 unfinished projects


async def test_import_export_import_changes_nothing_xlsx_and_csv(sessionmaker: Maker, tmp_path: Path) -> None:
    await import_sample(sessionmaker, now=NOW)
    async with sessionmaker() as s:
        before = await ledger_state(s)
        xlsx = await export_ledger(s, tmp_path / "round.xlsx")
        csv_path = await export_ledger(s, tmp_path / "round.csv")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel shows the Chinese
    assert milestones_csv_path(csv_path).read_bytes().startswith(b"\xef\xbb\xbf")
    async with sessionmaker() as s:
        again = await import_ledger(s, xlsx, now=NOW)
        assert (again.created, again.updated, again.unchanged, again.change_rows) == (0, 0, 44, 0)
        assert await ledger_state(s) == before
        again = await import_ledger(s, csv_path, milestones_path=milestones_csv_path(csv_path), now=NOW)
        assert (again.updated, again.change_rows, again.milestones_changed) == (0, 0, 0)
        assert await ledger_state(s) == before


async def test_a_county_leaders_workbook_holds_only_their_county(sessionmaker: Maker, tmp_path: Path) -> None:
    await import_sample(sessionmaker, now=NOW)
    async with sessionmaker() as s:
        qixian = await s.scalar(select(County).where(County.name == "祁县"))
        assert qixian is not None
        path = await export_ledger(s, tmp_path / "qixian.xlsx", county_id=qixian.id, lang="en")
    book = load_workbook(path)
    assert book.sheetnames == ["祁县", "milestones"]
    codes = {row[0].value for row in book["祁县"].iter_rows(min_row=2)}
    assert codes == {"JZ-009", "JZ-010", "JZ-011", "JZ-012"}
    assert {row[0].value for row in book["milestones"].iter_rows(min_row=2)} <= codes
    assert {row[8].value for row in book["祁县"].iter_rows(min_row=2)} == {"completed", "started"}
    # an English workbook imports back unchanged too
    async with sessionmaker() as s:
        again = await import_ledger(s, path, now=NOW)
        assert (again.unchanged, again.change_rows) == (4, 0)


async def test_the_template_has_drop_downs_and_imports_as_nothing(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        path = await write_template(s, tmp_path / "template.xlsx")
    book = load_workbook(path)
    assert book.sheetnames[:3] == ["台账", "节点", "填写说明"]
    ledger = book["台账"]
    assert ledger.freeze_panes == "A2"
    assert ledger["A1"].value == "项目编号 code"
    ranges = {str(v.sqref): v.formula1 for v in ledger.data_validations.dataValidation}
    assert any(r.startswith("C2") for r in ranges)  # county
    assert any(r.startswith("I2") for r in ranges)  # status
    lists = book["_lists"]
    assert lists.sheet_state == "hidden"
    assert [c.value for c in lists["A"]] == list(JINZHONG_COUNTIES)
    assert [c.value for c in lists["B"]][:3] == ["未开工", "已开工", "已完工"]
    async with sessionmaker() as s:
        result = await import_ledger(s, path, now=NOW)
    assert result.nothing_to_import
