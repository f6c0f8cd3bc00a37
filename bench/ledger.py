"""Ledger import/export at scale: 10,000 projects (and 2 milestones each) on SQLite and, when it
answers, PostgreSQL. Prints how long each step takes; the target is a few seconds each.

    .venv/bin/python bench/ledger.py [--projects 10000] [--postgres URL]

Steps: import into an empty ledger, re-import the same file (no change), re-import with a third of
the projects changed, export to .xlsx (city + 11 county sheets + milestones), export to .csv."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from bench._common import PG_DEFAULT, pg_answers, pg_database
from bot.ledger.export import MILESTONE_EXPORT_COLUMNS, Sheet, write_xlsx
from bot.ledger.format import CITY_SHEET, JINZHONG_COUNTIES, LEDGER_COLUMNS, MILESTONE_SHEET, STATUS_LABELS
from bot.ledger.io import export_ledger, import_ledger
from bot.store.db import make_engine, make_sessionmaker, migrate

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
CATEGORIES = ("雨污分流改造", "工业废水深度处理", "面源污染治理", "入河排污口整治", "污水处理厂提标", "生态修复")


def make_ledger(count: int, *, changed: bool = False, seed: int = 7) -> tuple[list[list[Any]], list[list[Any]]]:
    """A consistent ledger; `changed` moves a third of the projects forward (progress, note, a milestone)."""
    rng = random.Random(seed)
    projects, milestones = [], []
    for n in range(1, count + 1):
        code = f"BX-{n:05d}"
        county = JINZHONG_COUNTIES[n % len(JINZHONG_COUNTIES)]
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(0, 700))
        finish = start + dt.timedelta(days=rng.randrange(200, 900))
        status = ("completed", "started", "started", "not_started")[n % 4]
        progress = {"completed": 100, "started": rng.randrange(5, 95), "not_started": 0}[status]
        note = ""
        if changed and n % 3 == 0 and status == "started":
            progress, note = min(99, progress + 5), "本月推进"
        investment = Decimal(rng.randrange(100, 50000))
        projects.append([
            code, f"{county}第{n}号{CATEGORIES[n % 6]}工程", county, CATEGORIES[n % 6], f"{county}住建局",
            start, finish, investment, STATUS_LABELS[status], progress,
            (investment * progress / 100).quantize(Decimal("0.01")),
            None if status == "not_started" else start + dt.timedelta(days=10),
            min(finish, dt.date(2026, 10, 1)) if status == "completed" else None, note,
        ])
        for i, name in enumerate(("主体工程完成", "竣工验收")):
            due = start + (finish - start) * (i + 1) // 2
            done = due if status == "completed" or (changed and n % 3 == 0 and i == 0) else None
            milestones.append([code, projects[-1][1], name, due, done if done and done <= NOW.date() else None])
    return projects, milestones


def write_file(path: Path, ledger: tuple[list[list[Any]], list[list[Any]]]) -> Path:
    write_xlsx(path, [Sheet(CITY_SHEET["zh"], LEDGER_COLUMNS, ledger[0]),
                      Sheet(MILESTONE_SHEET["zh"], MILESTONE_EXPORT_COLUMNS, ledger[1])])
    return path


async def timed(label: str, step: Callable[[], Awaitable[str]], results: list[tuple[str, float, str]]) -> None:
    started = time.perf_counter()
    note = await step()
    results.append((label, time.perf_counter() - started, note))
    print(f"  {label:<32} {results[-1][1]:6.2f} s  {note}", flush=True)


async def run(url: str, files: dict[str, Path], out: Path) -> list[tuple[str, float, str]]:
    await migrate(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    results: list[tuple[str, float, str]] = []

    def importing(path: Path) -> Callable[[], Awaitable[str]]:
        async def step() -> str:
            async with maker() as session:
                r = await import_ledger(session, path, new_counties=True, now=NOW)
            return (f"new {r.created}, updated {r.updated}, unchanged {r.unchanged}, "
                    f"milestone changes {r.milestones_changed}, dossier rows {r.change_rows}")
        return step

    def exporting(path: Path) -> Callable[[], Awaitable[str]]:
        async def step() -> str:
            async with maker() as session:
                await export_ledger(session, path)
            size = await asyncio.to_thread(lambda: path.stat().st_size)
            return f"{size // 1024} KiB"
        return step

    try:
        await timed("import (new ledger)", importing(files["base"]), results)
        await timed("re-import (no change)", importing(files["base"]), results)
        await timed("re-import (a third changed)", importing(files["changed"]), results)
        await timed("export .xlsx (city+counties+节点)", exporting(out / "export.xlsx"), results)
        await timed("export .csv", exporting(out / "export.csv"), results)
    finally:
        await engine.dispose()
    return results


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = {"base": write_file(folder / "base.xlsx", make_ledger(args.projects)),
                 "changed": write_file(folder / "changed.xlsx", make_ledger(args.projects, changed=True))}
        print(f"{args.projects} projects, {2 * args.projects} milestones; files written in "
              f"{time.perf_counter() - started:.1f} s ({files['base'].stat().st_size // 1024} KiB)")

        print("SQLite:")
        await run(f"sqlite+aiosqlite:///{folder / 'bench.db'}", files, folder)

        if not pg_answers(args.postgres):
            print("PostgreSQL: does not answer, skipped")
            return
        async with pg_database(args.postgres) as url:
            print("PostgreSQL:")
            await run(url, files, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--postgres", default=PG_DEFAULT, help="an admin URL on the server (a database is made)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
