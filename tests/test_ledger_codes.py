"""Project codes in a ledger file: stored in their one canonical form, so that however a city office
writes a code it names one project; a code the chat could not serve, or two spellings of one code,
stop the import with the rows named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.ledger.io import LedgerRejected, describe, import_ledger
from bot.store.models import Milestone, Project
from tests.ledger_files import NOW, D, ledger_state, project, seed_counties, write_csv, write_xlsx

Maker = async_sessionmaker[AsyncSession]
LONG_CJK = "晋中市祁县昌源河流域生态修复与水环境综合治理工程第一批次甲乙丙丁戊己庚辛壬癸子丑"


async def _import(maker: Maker, path: Path, **kwargs: object) -> object:
    async with maker() as s:
        return await import_ledger(s, path, now=NOW, **kwargs)  # type: ignore[arg-type]


async def _rejected(maker: Maker, path: Path) -> list[str]:
    with pytest.raises(LedgerRejected) as caught:
        await _import(maker, path)
    return [describe(i, "zh") for i in caught.value.issues]


async def _codes(maker: Maker) -> list[str]:
    async with maker() as s:
        return list(await s.scalars(select(Project.code).order_by(Project.id)))


async def test_codes_are_stored_in_their_canonical_form_and_a_second_spelling_updates_the_same_project(
    sessionmaker: Maker, tmp_path: Path
) -> None:
    assert len(LONG_CJK) == 40
    async with sessionmaker() as s:
        await seed_counties(s)
    first = write_xlsx(tmp_path / "first.xlsx", [
        project("hc 003", 项目名称="三号"), project("ＨＣ－００５", 项目名称="五号"), project("JZ-017\u200f"),
        project(f" {LONG_CJK} "),
    ], milestones=[["hc-003", "管网铺设", D("2026-06-30"), None]])
    await _import(sessionmaker, first)
    assert await _codes(sessionmaker) == ["HC-003", "HC-005", "JZ-017", LONG_CJK]
    async with sessionmaker() as s:
        milestones = (await s.execute(select(Project.code, Milestone.name).join(Milestone.project))).all()
        assert milestones == [("HC-003", "管网铺设")]  # the milestone sheet's code is read the same way
    # the same projects written another way: updated, not created again
    again = write_csv(tmp_path / "again.csv", [project("HC-003", 项目名称="三号", 备注="改"),
                                                        project("hc-005", 项目名称="五号")])
    result = await _import(sessionmaker, again)
    assert (result.created, result.updated) == (0, 1)  # type: ignore[attr-defined]
    assert await _codes(sessionmaker) == ["HC-003", "HC-005", "JZ-017", LONG_CJK]


async def test_codes_the_chat_could_not_serve_are_refused_with_their_row(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
        before = await ledger_state(s)
    path = write_xlsx(tmp_path / "bad.xlsx", [
        project("JZ-001"),
        project("HC:003"),
        project("\u200b\u200f"),
        project(LONG_CJK + "寅"),
        project("项目/7"),
    ], milestones=[["JZ:001", "管网铺设", None, None]])
    lines = await _rejected(sessionmaker, path)
    assert lines == [
        "「台账」第 3 行「项目编号」列：项目编号 “HC:003” 含有不能用的字符 :：编号只能由文字、数字和 - _ . 组成",
        "「台账」第 4 行「项目编号」列：不能为空",
        f"「台账」第 5 行「项目编号」列：“{LONG_CJK}寅” 太长，最多 40 个字",
        "「台账」第 6 行「项目编号」列：项目编号 “项目/7” 含有不能用的字符 /：编号只能由文字、数字和 - _ . 组成",
        "「节点」第 2 行「项目编号」列：项目编号 “JZ:001” 含有不能用的字符 :：编号只能由文字、数字和 - _ . 组成",
    ]
    async with sessionmaker() as s:
        assert await ledger_state(s) == before  # all or nothing


async def test_two_rows_whose_codes_are_one_code_are_both_named(sessionmaker: Maker, tmp_path: Path) -> None:
    async with sessionmaker() as s:
        await seed_counties(s)
    path = write_csv(tmp_path / "twice.csv", [project("hc-007"), project("JZ-001"), project("HC 007")])
    lines = await _rejected(sessionmaker, path)
    assert lines == ["「twice.csv」第 4 行「项目编号」列：项目编号 “HC 007” 与第 2 行的 “hc-007” 统一写法后都是 HC-007"
                     "（不分大小写、全角半角和空格），是同一个编号，请改成不同的编号"]
    with pytest.raises(LedgerRejected) as caught:
        await _import(sessionmaker, path)
    assert "row 2" in describe(caught.value.issues[0], "en") and "HC-007" in describe(caught.value.issues[0], "en")
    assert await _codes(sessionmaker) == []
