"""Importing a ledger file: headers in either language, the upsert and its dossier, the all-or-nothing
rule with every bad row named, and the milestone sheet."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ledger.io import LedgerRejected, describe, import_ledger
from bot.store.models import Change, County, Milestone, Project
from tests.ledger_files import (
    HEADERS,
    MS_HEADERS,
    NOW,
    D,
    ledger_state,
    project,
    seed_counties,
    write_csv,
    write_xlsx,
)

Maker = async_sessionmaker[AsyncSession]


async def _import(maker: Maker, path: Path, **kwargs: object) -> object:
    async with maker() as s:
        return await import_ledger(s, path, now=NOW, **kwargs)  # type: ignore[arg-type]


async def _rejected(maker: Maker, path: Path, **kwargs: object) -> LedgerRejected:
    with pytest.raises(LedgerRejected) as caught:
        await _import(maker, path, **kwargs)
    return caught.value


async def test_a_first_import_creates_counties_projects_and_their_dossier(sessionmaker: Maker, tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "ledger.xlsx", [
        project("JZ-001"),
        project("JZ-002", 县区="平遥县", 状态="未开工", **{"形象进度(%)": 0, "实际开工": None}),
        project("JZ-003", 县区="Springfield", 状态="已完工", **{"形象进度(%)": 100, "实际完工": D("2026-10-01")}),
    ])
    result = await _import(sessionmaker, path, new_counties=True)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        counties = {c.name: c.sort_order for c in await s.scalars(select(County))}
        # Jinzhong's counties take the programme's order; others follow
        assert counties == {"祁县": 3, "平遥县": 4, "Springfield": 12}
        p = await s.scalar(select(Project).where(Project.code == "JZ-001"))
        assert p is not None and (p.status, p.progress, p.investment) == ("started", 50, Decimal("1200"))
        # one entry opens each project's dossier
        opened = [(c.source, c.field, c.old, c.new) for c in await s.scalars(select(Change).where(
            Change.project_id == p.id))]
        assert opened == [("create", "name", None, "祁县JZ-001雨污分流改造工程")]
        assert len(list(await s.scalars(select(Change)))) == 3


async def test_headers_in_english_or_both_languages_in_any_order_with_extras(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    headers = [" Code ", "项目名称 name", "县区（county）", "Investment (10k yuan)", "形象进度（%） progress",
               "状态 status", "联系人", "planned_start", "Planned Finish", "actual start"]
    row = ["JZ-009", "祁县昌源河生态修复工程", "祁 县", "1,250.5", "80%", "started", "王联络",
           "2026-01-01", "2026/12/31", "2026年1月5日"]
    path = write_xlsx(tmp_path / "en.xlsx", [row], headers=headers, above=[["晋中市“一泓清水入黄河”工程台账"]])
    result = await _import(sessionmaker, path)
    assert result.created == 1  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        p = await s.scalar(select(Project))
        assert p is not None
        assert (p.code, p.county.name, p.investment, p.progress, p.status) == (
            "JZ-009", "祁县", Decimal("1250.50"), 80, "started")
        assert (p.planned_finish, p.actual_start) == (D("2026-12-31"), D("2026-01-05"))


async def test_reimport_records_only_what_changed_and_twice_changes_nothing(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    first = write_xlsx(tmp_path / "a.xlsx", [project("JZ-001"), project("JZ-002")])
    await _import(sessionmaker, first)
    second = write_xlsx(tmp_path / "b.xlsx", [
        project("JZ-001", **{"形象进度(%)": 70, "备注": "管网铺设过半"}), project("JZ-002"),
    ])
    result = await _import(sessionmaker, second)
    assert (result.created, result.updated, result.unchanged, result.change_rows) == (0, 1, 1, 2)  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        rows = list(await s.scalars(select(Change).where(Change.source == "import").order_by(Change.field)))
        assert [(c.field, c.old, c.new) for c in rows] == [("notes", "", "管网铺设过半"), ("progress", "50", "70")]
        before = await ledger_state(s)
    again = await _import(sessionmaker, second)
    assert (again.updated, again.unchanged, again.change_rows) == (0, 2, 0)  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        assert await ledger_state(s) == before


async def test_every_bad_row_is_named_with_column_and_value_and_nothing_changes(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    await _import(sessionmaker, write_xlsx(tmp_path / "ok.xlsx", [project("JZ-001")]))
    async with sessionmaker() as s:
        before = await ledger_state(s)
    rows = [
        project("JZ-001", **{"形象进度(%)": 90}),  # row 2: a good change that must not be applied
        project("JZ-002", 县区="祁 现"),  # 3: unknown county, close to 祁县
        project("JZ-003", 计划开工="明年三月"),  # 4: not a date
        project("JZ-004", 计划完工="2026-02-30"),  # 5: no such day
        project("JZ-005", 计划完工=D("2025-12-01")),  # 6: finish before start
        project("JZ-006", 实际开工=D("2026-03-01"), 实际完工=D("2026-02-01"), 状态="已完工",
                **{"形象进度(%)": 100}),  # 7: actual finish before actual start
        project("JZ-007", **{"形象进度(%)": 120}),  # 8
        project("JZ-008", **{"形象进度(%)": "约一半"}),  # 9
        project("JZ-009", 状态="完成"),  # 10
        project("JZ-010", 状态="已完工", 实际完工=D("2026-10-01")),  # 11: completed at 50
        project("JZ-011", 状态="已完工", **{"形象进度(%)": 100}),  # 12: completed without a finish date
        project("JZ-012", 状态="已完工", 实际完工=D("2026-12-01"), **{"形象进度(%)": 100}),  # 13: in the future
        project("JZ-013", 状态="未开工", 实际开工=None),  # 14: not started at 50
        project("JZ-014", 状态="未开工", **{"形象进度(%)": 0}),  # 15: not started, with an actual start
        project("JZ-015", **{"总投资(万元)": -5}),  # 16
        project("JZ-016"),  # 17
        project("JZ-016"),  # 18: duplicate code
        project(""),  # 19: empty code
        project("JZ-019", 项目名称=""),  # 20: empty name
    ]
    path = write_xlsx(tmp_path / "bad.xlsx", rows)
    rejected = await _rejected(sessionmaker, path)
    found = {(i.row, i.column, i.code, i.value) for i in rejected.issues}
    assert found == {
        (3, "县区", "unknown_county", "祁 现"),
        (4, "计划开工", "bad_date", "明年三月"),
        (5, "计划完工", "impossible_date", "2026-02-30"),
        (6, "计划完工", "finish_before_start", "2025-12-01"),
        (7, "实际完工", "finish_before_start", "2026-02-01"),
        (8, "形象进度(%)", "progress_range", "120"),
        (9, "形象进度(%)", "progress_not_number", "约一半"),
        (10, "状态", "bad_status", "完成"),
        (11, "形象进度(%)", "completed_needs_100", "50"),
        (12, "实际完工", "completed_needs_finish", ""),
        (13, "实际完工", "date_in_future", "2026-12-01"),
        (14, "形象进度(%)", "not_started_with_progress", "50"),
        (15, "实际开工", "not_started_with_start", "2026-01-10"),
        (16, "总投资(万元)", "negative", "-5"),
        (18, "项目编号", "duplicate_code", "JZ-016"),
        (19, "项目编号", "empty", ""),
        (20, "项目名称", "empty", ""),
    }
    lines = [describe(i, "zh") for i in rejected.issues]
    assert "「台账」第 3 行「县区」列：“祁 现” 不是已知的县区，是不是“祁县”？" in lines[0]
    assert any("第 5 行" in line and "2026-02-30" in line and "不存在" in line for line in lines)
    assert any("第 18 行" in line and "第 17 行已有" in line for line in lines)
    english = describe(rejected.issues[0], "en")
    assert 'row 3, column "县区": "祁 现" is not a known county; did you mean "祁县"?' in english
    async with sessionmaker() as s:
        assert await ledger_state(s) == before


async def test_a_missing_required_column_and_an_empty_county_table(sessionmaker: Maker, tmp_path: Path) -> None:
    headers = [h for h in HEADERS if h != "县区"]
    row = [v for h, v in zip(HEADERS, project("JZ-001"), strict=True) if h != "县区"]
    rejected = await _rejected(sessionmaker, write_xlsx(tmp_path / "no_county.xlsx", [row], headers=headers))
    assert [(i.code, i.column) for i in rejected.issues] == [("missing_column", "县区 county")]
    assert describe(rejected.issues[0]) == "「台账」缺少必填列「县区 county」"

    rejected = await _rejected(sessionmaker, write_csv(tmp_path / "first.csv", [project("JZ-001")]))
    assert [(i.row, i.code) for i in rejected.issues] == [(2, "unknown_county")]
    assert "--new-counties" in describe(rejected.issues[0])
    async with sessionmaker() as s:
        assert await s.scalar(select(County)) is None


async def test_milestones_replace_a_projects_list_and_are_recorded(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    ledger = [project("JZ-001"), project("JZ-002")]
    await _import(sessionmaker, write_xlsx(tmp_path / "a.xlsx", ledger, milestones=[
        ["JZ-001", "管网铺设", D("2026-06-30"), D("2026-06-20")],
        ["JZ-001", "竣工验收", D("2026-12-31"), None],
        ["JZ-002", "设计批复", D("2026-03-31"), D("2026-03-15")],
    ]))
    result = await _import(sessionmaker, write_xlsx(tmp_path / "b.xlsx", ledger, milestones=[
        ["JZ-001", "管网铺设", D("2026-06-30"), D("2026-06-20")],  # unchanged
        ["JZ-001", "竣工验收", D("2026-12-15"), None],  # moved
        ["JZ-001", "入户改造", D("2026-09-30"), D("2026-10-08")],  # new
        # 设计批复 of JZ-002 stays: JZ-002 is not on this sheet
    ]))
    assert (result.updated, result.milestones_changed) == (1, 2)  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        names = {(r[0], r[1]): r[2] for r in (await ledger_state(s))[1]}
        assert names == {("JZ-001", "入户改造"): D("2026-09-30"), ("JZ-001", "管网铺设"): D("2026-06-30"),
                         ("JZ-001", "竣工验收"): D("2026-12-15"), ("JZ-002", "设计批复"): D("2026-03-31")}
        changes = {(c.field, c.old, c.new) for c in await s.scalars(select(Change).where(Change.source == "import"))}
        assert changes == {
            ("milestone:竣工验收", "due 2026-12-31; done —", "due 2026-12-15; done —"),
            ("milestone:入户改造", None, "due 2026-09-30; done 2026-10-08"),
        }
    # a sheet listing JZ-001 with one milestone removes the others; no milestone sheet leaves them be
    await _import(sessionmaker, write_xlsx(tmp_path / "c.xlsx", ledger, milestones=[
        ["JZ-001", "管网铺设", D("2026-06-30"), D("2026-06-20")]]))
    await _import(sessionmaker, write_xlsx(tmp_path / "d.xlsx", ledger))
    async with sessionmaker() as s:
        assert [(r[0], r[1]) for r in (await ledger_state(s))[1]] == [("JZ-001", "管网铺设"), ("JZ-002", "设计批复")]
        removed = await s.scalar(select(Change).where(Change.field == "milestone:竣工验收", Change.new.is_(None)))
        assert removed is not None


async def test_bad_milestones_are_errors_and_one_outside_the_plan_is_a_warning(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    ledger = [project("JZ-001")]
    rejected = await _rejected(sessionmaker, write_xlsx(tmp_path / "bad.xlsx", ledger, milestones=[
        ["JZ-404", "管网铺设", D("2026-06-30"), None],
        ["JZ-001", "竣工验收", "2026-02-30", None],
        ["JZ-001", "入户改造", D("2026-09-30"), D("2026-12-01")],
        ["JZ-001", "", D("2026-09-30"), None],
    ]))
    assert {(i.sheet, i.row, i.column, i.code, i.value) for i in rejected.issues} == {
        ("节点", 2, "项目编号", "unknown_project", "JZ-404"),
        ("节点", 3, "计划完成", "impossible_date", "2026-02-30"),
        ("节点", 4, "实际完成", "date_in_future", "2026-12-01"),
        ("节点", 5, "节点名称", "empty", ""),
    }
    async with sessionmaker() as s:
        assert await s.scalar(select(Project)) is None

    result = await _import(sessionmaker, write_xlsx(tmp_path / "warn.xlsx", ledger, milestones=[
        ["JZ-001", "前期准备", D("2025-10-31"), D("2025-10-20")]]))
    assert [(w.code, w.row) for w in result.warnings] == [("milestone_outside_plan", 2)]  # type: ignore[attr-defined]
    assert "2025-10-31" in describe(result.warnings[0])  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        assert await s.scalar(select(Milestone.name)) == "前期准备"


async def test_csv_with_a_milestones_file_in_gbk_as_excel_saves_it(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    ledger = write_csv(tmp_path / "ledger.csv", [project("JZ-001")], encoding="gb18030")
    ms = write_csv(tmp_path / "nodes.csv", [["JZ-001", "管网铺设", D("2026-06-30"), None]], headers=MS_HEADERS)
    result = await _import(sessionmaker, ledger, milestones_path=ms)
    assert (result.created, result.milestones_changed) == (1, 1)  # type: ignore[attr-defined]
    async with sessionmaker() as s:
        p = await s.scalar(select(Project))
        assert p is not None and p.name == "祁县JZ-001雨污分流改造工程"


async def test_progress_typed_as_a_percentage_in_excel(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    path = write_xlsx(tmp_path / "pct.xlsx", [
        project("JZ-001", **{"形象进度(%)": 0.8}), project("JZ-002", **{"形象进度(%)": 0.35})])
    await _import(sessionmaker, path)
    async with sessionmaker() as s:
        assert sorted(await s.scalars(select(Project.progress))) == [35, 80]


async def test_an_empty_file_imports_nothing(sessionmaker: Maker, tmp_path: Path) -> None:
    result = await _import(sessionmaker, write_xlsx(tmp_path / "empty.xlsx", [], milestones=[]))
    assert result.nothing_to_import  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "content", "code"), [
    ("missing.xlsx", None, "file_missing"),
    ("ledger.xls", b"old excel", "unknown_extension"),
    ("broken.xlsx", b"PK\x03\x04 not really a zip", "file_corrupt"),
])
async def test_unreadable_files_are_one_clear_problem(
    sqlite_url: str, tmp_path: Path, name: str, content: bytes | None, code: str
) -> None:
    from bot.store.db import make_engine, make_sessionmaker

    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    engine = make_engine(sqlite_url)
    try:
        rejected = await _rejected(make_sessionmaker(engine), path)
    finally:
        await engine.dispose()
    assert [i.code for i in rejected.issues] == [code]
    assert name in describe(rejected.issues[0])



def test_cell_values_as_people_write_them() -> None:
    from bot.ledger.validate import CellError, parse_date, parse_money, parse_progress

    assert parse_date("2026/3/1 00:00:00") == parse_date("2026年3月1日") == D("2026-03-01")
    assert parse_money("1,250.456万元") == Decimal("1250.46")
    assert parse_progress("８０％") == 80  # full-width, as a Chinese input method types it
    for bad, call in (("2026-02-29", parse_date), ("NaN", parse_money), ("80.5", parse_progress)):
        with pytest.raises(CellError):
            call(bad)
