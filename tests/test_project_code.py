"""One canonical project code: however a person or a workbook writes a code, it is stored and looked up
in one form, and an existing database's codes take that form when they are upgraded."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import select, text

from bot.domain.project_code import MAX_CODE_LENGTH, bad_code_chars, canonical_code, code_problem
from bot.services.project_views import project_by_code
from bot.store.db import alembic_config, make_engine, make_sessionmaker
from bot.store.models import Milestone, Project

RLM, ZWSP, LRI, PDI, BOM, SHY, ZWJ = "\u200f", "\u200b", "\u2066", "\u2069", "\ufeff", "\u00ad", "\u200d"


@pytest.mark.parametrize("typed", [
    "HC-003", "hc-003", "HC 003", " HC 003 ", "HC - 003", "ＨＣ－００３", "ｈｃ　００３", f"HC{RLM}-003",
    f"{ZWSP}HC-0{ZWJ}03{BOM}", f"{LRI}HC-003{PDI}", f"HC{SHY}-003", "HC\u2013003", "HC\u2212003", "HC\t003",
])
def test_every_way_of_writing_a_code_reads_as_the_imported_one(typed: str) -> None:
    assert canonical_code(typed) == "HC-003"


def test_spaces_inside_a_code_become_one_dash_unless_a_separator_is_there_already() -> None:
    assert canonical_code("祁县 水环境  01") == "祁县-水环境-01"
    assert canonical_code("HC _ 003") == "HC_003"
    assert canonical_code("A . 1") == "A.1"
    assert canonical_code("JZ-017") == "JZ-017"  # the sample ledger's codes are canonical already


def test_canonical_form_is_stable() -> None:
    for typed in ("hc 003", "ＪＺ－０１７", "晋中 ｑｓ-7", "ß-1"):
        once = canonical_code(typed)
        assert canonical_code(once) == once


def test_valid_codes() -> None:
    assert code_problem("JZ-017") is None
    assert code_problem("晋中市一泓清水入黄河生态修复工程第一批次项目编号甲乙丙丁戊己庚辛壬癸子丑寅卯") is None
    assert code_problem("HC_003.A") is None


def test_invalid_codes_say_why() -> None:
    assert code_problem(canonical_code(f"{ZWSP}{RLM} ")) == "empty"
    assert code_problem("A" * (MAX_CODE_LENGTH + 1)) == "too_long"
    assert code_problem("A" * MAX_CODE_LENGTH) is None
    for bad in ("HC:003", "HC/003", "HC#3", "项目🌊1", "'HC'", "---", "."):
        assert code_problem(canonical_code(bad)) == "bad_code_chars", bad
    assert bad_code_chars("HC:0:3/1") == ":/"


# --- an existing database ---------------------------------------------------------------------


async def test_upgrade_gives_stored_codes_their_canonical_form_unless_two_would_meet(db_url: str) -> None:
    config = alembic_config(db_url)
    await asyncio.to_thread(command.downgrade, config, "0001")
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO counties (id, name, sort_order) VALUES (1, '祁县', 0)"))
            for pid, code in enumerate(["hc-003", "ＨＣ－００５", "JZ-017", "hc-007", "HC-007"], start=1):
                await conn.execute(text(
                    "INSERT INTO projects (id, code, name, county_id, category, unit, status, progress, notes,"
                    " updated_at) VALUES (:id, :code, :name, 1, '', '', 'started', 10, '', CURRENT_TIMESTAMP)"),
                    {"id": pid, "code": code, "name": f"项目{pid}"})
            await conn.execute(text("INSERT INTO milestones (id, project_id, name) VALUES (1, 1, '管网铺设')"))
        await asyncio.to_thread(command.upgrade, config, "head")
        async with make_sessionmaker(engine)() as session:
            codes = dict((await session.execute(select(Project.id, Project.code))).all())
            assert codes == {1: "HC-003", 2: "HC-005", 3: "JZ-017", 4: "hc-007", 5: "HC-007"}
            # the table was rebuilt on SQLite: what refers to a project is still there
            assert [m.project_id for m in await session.scalars(select(Milestone))] == [1]
            found = await project_by_code(session, "hc 003")
            assert found is not None and found.id == 1
            assert (await project_by_code(session, "ＨＣ－００７")).id == 5  # type: ignore[union-attr]
            assert (await project_by_code(session, "hc-007")).id == 4  # type: ignore[union-attr]
    finally:
        await engine.dispose()


def test_a_code_as_a_file_name_keeps_its_letters() -> None:
    """Photo folders and the dossier's file name: Chinese codes stay apart (they used to become `__-001`
    both), and nothing a code stored before codes were checked holds can leave the folder."""
    from bot.domain.project_code import file_safe

    assert file_safe("祁县-001") == "祁县-001" and file_safe("平遥-001") == "平遥-001"
    assert file_safe("JZ-017") == "JZ-017" and file_safe("A.B_1") == "A_B_1"
    assert file_safe("..") == "_" and file_safe("a/../b") == "a_b" and file_safe("HC:3") == "HC_3"
    assert file_safe("") == "_"
