"""Two administrators import files adding the same new project at the same moment: one import
wins, the other gets the usual one-line rejection (exit 1, nothing of its file written), never a
database traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.__main__ import build_parser
from bot.cli import ledger as ledger_command
from bot.config import Settings
from bot.ledger import io as ledger_io
from bot.ledger.issues import Issue, describe
from bot.store import db
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Change, Project
from tests import factories
from tests.conftest import make_settings
from tests.ledger_files import project, write_xlsx


async def already_migrated(url: str) -> None:
    return None


def both_checked_before_either_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Holds each import between its check and its write until both have checked: the race, every time."""
    write_plan = ledger_io.write_plan
    arrived: list[int] = []
    both = asyncio.Event()

    async def racing(*args: Any, **kwargs: Any) -> Any:
        arrived.append(1)
        if len(arrived) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 30)
        return await write_plan(*args, **kwargs)

    monkeypatch.setattr(ledger_io, "write_plan", racing)


async def test_two_imports_adding_the_same_code_at_once_one_wins_the_other_is_told_plainly(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings: Settings = make_settings(db_url, tmp_path / "data")
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as s:
        await factories.county(s, "祁县")
        await s.commit()
    first = write_xlsx(tmp_path / "first.xlsx", [project("JZ-100", 项目名称="甲办公室的新项目")])
    second = write_xlsx(tmp_path / "second.xlsx", [project("JZ-100", 项目名称="乙办公室的新项目"),
                                                    project("JZ-101", 项目名称="乙办公室的另一个项目")])
    both_checked_before_either_writes(monkeypatch)
    # The database is at head already; two Alembic runs in one process would trip over Alembic's module
    # globals (separate `qingshui import` processes each have their own).
    monkeypatch.setattr(db, "migrate", already_migrated)
    parser = build_parser("zh")

    codes = await asyncio.gather(
        ledger_command.main(parser.parse_args(["import", str(first)]), settings),
        ledger_command.main(parser.parse_args(["import", str(second)]), settings),
    )

    assert sorted(codes) == [0, 1]
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["另一次导入刚刚写入了本文件要新建的项目 JZ-100，本文件没有导入任何内容；请等那次导入结束后重新导入"]
    async with make_sessionmaker(engine)() as s:
        projects = list(await s.scalars(select(Project)))
        created = list(await s.scalars(select(Change).where(Change.source == "create")))
    await engine.dispose()
    winner = ["甲办公室的新项目"] if codes[0] == 0 else ["乙办公室的新项目", "乙办公室的另一个项目"]
    assert sorted(p.name for p in projects) == sorted(winner)  # all of the winner's file, nothing of the other
    assert len(created) == len(winner)  # one dossier opened per project


def test_the_rejection_reads_in_english_too() -> None:
    line = describe(Issue("written_meanwhile", value="JZ-100, JZ-101", detail={"more": 0}), "en")
    assert line == ("Another import has just written project JZ-100, JZ-101 that this file adds; nothing of this "
                    "file was imported: import it again once the other one has finished")
    assert "项目或县区" in describe(Issue("written_meanwhile", detail={"more": 0}), "zh")
