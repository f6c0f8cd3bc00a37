"""`qingshui import` killed with SIGKILL while it writes a ledger of thousands of rows: the database
holds either nothing of the file or all of it, never a part; run again, the import completes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
import xlsxwriter
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.ledger.io import import_ledger
from bot.store.db import make_engine, make_sessionmaker
from tests.faults import wait_until
from tests.ledger_files import HEADERS, MS_HEADERS, NOW, ledger_state, project, seed_counties, write_xlsx

pytestmark = [pytest.mark.slow]

NEW_PROJECTS = 3000
COUNTIES = ("祁县", "平遥县", "介休市")


def write_big_ledger(path: Path) -> Path:
    """The two projects already in the ledger, changed, and NEW_PROJECTS new ones, half with a milestone."""
    book = xlsxwriter.Workbook(str(path))
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    ledger, milestones = book.add_worksheet("台账"), book.add_worksheet("节点")
    ledger.write_row(0, 0, HEADERS)
    milestones.write_row(0, 0, MS_HEADERS)
    rows = [project("JZ-001", **{"形象进度(%)": 75}), project("JZ-002", **{"形象进度(%)": 80})]
    rows += [project(f"JZ-{n:05d}", **{"县区": COUNTIES[n % 3], "项目名称": f"第{n}号入河排污口整治"})
             for n in range(10, 10 + NEW_PROJECTS)]
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                ledger.write_datetime(r, c, dt.datetime.combine(value, dt.time()), dates)
            elif value is not None:
                ledger.write(r, c, value)
    for r, row in enumerate(rows[2::2], 1):
        milestones.write_row(r, 0, [row[0], "管网铺设"])
        milestones.write_datetime(r, 2, dt.datetime(2026, 12, 1), dates)
    book.close()
    return path


class WriterProbe:
    """Tells whether a transaction is writing to the database right now (from another connection)."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.sqlite_path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        self.engine = None if self.sqlite_path else make_engine(url, isolation_level="AUTOCOMMIT")

    async def busy(self) -> bool:
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path, timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # fails at once while another connection holds the write lock
            except sqlite3.OperationalError as exc:
                return "locked" in str(exc)
            else:
                conn.execute("ROLLBACK")
                return False
            finally:
                conn.close()
        assert self.engine is not None
        async with self.engine.connect() as conn:  # a transaction that has written has a transaction id
            writing = await conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"))
        return bool(writing)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


async def run_import(db_url: str, tmp_path: Path, ledger: Path, *, kill_while_writing: bool) -> tuple[int, bool]:
    """`python -m bot import FILE`; with kill_while_writing, SIGKILLed as soon as its write transaction
    is open. Returns (exit code, whether the kill came while it was writing)."""
    env = {**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "import.log").open("a")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "import", str(ledger), cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )
    probe = WriterProbe(db_url)
    killed_while_writing = False
    try:
        if kill_while_writing:
            async def writing_or_done() -> bool:
                return process.returncode is not None or await probe.busy()

            await wait_until(writing_or_done, 120, "the import to start writing", every=0.002)
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                killed_while_writing = True
        await asyncio.wait_for(process.wait(), 180)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
        await probe.close()
    return process.returncode or 0, killed_while_writing


async def test_an_import_killed_while_writing_leaves_nothing_or_everything(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        async with sessionmaker() as s:
            await seed_counties(s, *COUNTIES)
            small = write_xlsx(tmp_path / "small.xlsx", [project("JZ-001"), project("JZ-002")])
            await import_ledger(s, small, now=NOW)
            before = await ledger_state(s)
        ledger = write_big_ledger(tmp_path / "big.xlsx")

        code, killed_while_writing = await run_import(db_url, tmp_path, ledger, kill_while_writing=True)
        assert killed_while_writing and code == -signal.SIGKILL, (tmp_path / "import.log").read_text()
        async with sessionmaker() as s:
            after_kill = await ledger_state(s)

        code, _ = await run_import(db_url, tmp_path, ledger, kill_while_writing=False)  # the operator runs it again
        assert code == 0, (tmp_path / "import.log").read_text()
        async with sessionmaker() as s:
            complete = await ledger_state(s)
    finally:
        await engine.dispose()

    assert after_kill in (before, complete)  # nothing of the file, or all of it
    projects, milestones, changes = complete
    assert len(projects) == 2 + NEW_PROJECTS and len(milestones) == NEW_PROJECTS // 2
    progress = {p[0]: p[9] for p in projects}
    assert (progress["JZ-001"], progress["JZ-002"]) == (75, 80)  # the known projects took the file's progress
    assert changes == before[2] + NEW_PROJECTS + 2  # one 'create' per new project, one change per known one
