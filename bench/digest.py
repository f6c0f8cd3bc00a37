"""The alert scan and the digest figures at scale: a ledger of N projects with R reports each (default
1,000 and 10,000 projects, 50 reports each: 50,000 and 500,000 reports), bulk-inserted into a temporary
SQLite file (and PostgreSQL with --postgres). Target: under 1 s each, growing with projects, not reports.

    .venv/bin/python bench/digest.py [--projects 1000,10000] [--reports 50] [--postgres [URL]] [--explain]

Timed, each on a fresh session:
- alert scan, first run: lights for every project, problems opened, step 1 queued (a one-off burst);
- alert scan, steady: the same an hour later, when nothing new is due (what every run costs);
- digest figures: everything the digests read (bot.services.digest.gather) and the city's and every county's
  figures (no chart, no workbook);
  these two are the best of three runs, all printed (a shared machine's load shows in the spread);
- the same two with a fifth of the reports, to show the cost follows projects, not reports.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from bench._common import PG_DEFAULT, pg_answers, pg_database
from bot.domain.lights import LightRules, expected_progress
from bot.domain.periods import add_months, period_of_date
from bot.services.digest import figures_for, gather
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import Change, County, Milestone, Person, Project, Report
from jobs.base import JobContext
from jobs.registry import get_job, run_job

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SH).astimezone(dt.UTC)  # after November's deadline
COUNTIES = ("榆次区", "太谷区", "祁县", "平遥县", "介休市", "灵石县", "寿阳县", "昔阳县", "和顺县", "左权县", "榆社县")
CHUNK = 5000
REPEAT = 3  # steady scans and digests are timed as the best of this many runs


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start:start + CHUNK]


async def build(maker: async_sessionmaker[AsyncSession], projects: int, reports: int, seed: int = 11) -> None:
    """Counties, people, projects (2 milestones each), `reports` monthly reports per project ending this
    month (a tenth of projects not yet reported this month, 1 % undone) and their dossier changes."""
    rng = random.Random(seed)
    today = NOW.astimezone(SH).date()
    first_month = add_months(today.replace(day=1), -(reports - 1))
    async with maker() as s:
        await s.execute(insert(County), [{"name": n, "sort_order": i} for i, n in enumerate(COUNTIES)])
        people = [{"telegram_id": 10_000 + i, "name": f"联络员{i}", "role": "contact", "county_id": i + 1,
                   "language": "zh", "reachable": True, "unreachable_reason": "", "created_at": NOW}
                  for i in range(len(COUNTIES))]
        people += [{"telegram_id": 20_000 + i, "name": f"县长{i}", "role": "county_leader", "county_id": i + 1,
                    "language": "zh", "reachable": True, "unreachable_reason": "", "created_at": NOW}
                   for i in range(len(COUNTIES))]
        people += [{"telegram_id": 30_000 + i, "name": f"市领导{i}", "role": "leader", "county_id": None,
                    "language": "zh", "reachable": i != 2, "unreachable_reason": "", "created_at": NOW}
                   for i in range(3)]
        await s.execute(insert(Person), people)

        rows, milestones = [], []
        for n in range(1, projects + 1):
            start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(0, 700))
            finish = start + dt.timedelta(days=rng.randrange(300, 1100))
            # mostly on plan, some behind: roughly what a real ledger's lights look like
            expected = expected_progress(start, finish, today) or 0
            if expected >= 100 and n % 4:
                status, progress = "completed", 100
            else:
                progress = max(0, min(99, expected + rng.randint(-35, 10)))
                status = "started" if progress else "not_started"
            rows.append({"id": n, "code": f"BX-{n:05d}", "name": f"第{n}号污水管网改造工程", "county_id": n % 11 + 1,
                         "category": "雨污分流改造", "unit": "住建局", "planned_start": start, "planned_finish": finish,
                         "investment": None, "status": status, "progress": progress, "investment_done": None,
                         "actual_start": start if status != "not_started" else None,
                         "actual_finish": finish if status == "completed" else None, "notes": "",
                         "updated_at": NOW})
            for i, name in enumerate(("主体工程完成", "竣工验收")):
                due = start + (finish - start) * (i + 1) // 2
                milestones.append({"project_id": n, "name": name, "due": due,
                                   "done": due if status == "completed" or rng.random() < 0.6 else None})
        for chunk in _chunks(rows):
            await s.execute(insert(Project), chunk)
        for chunk in _chunks(milestones):
            await s.execute(insert(Milestone), chunk)
        await s.commit()

        report_id = 0
        batch_reports: list[dict[str, Any]] = []
        batch_changes: list[dict[str, Any]] = []

        async def flush() -> None:
            for chunk in _chunks(batch_reports):
                await s.execute(insert(Report), chunk)
            for chunk in _chunks(batch_changes):
                await s.execute(insert(Change), chunk)
            batch_reports.clear()
            batch_changes.clear()

        for project in rows:
            contact = (project["county_id"] - 1) + 1
            months = reports - (1 if project["id"] % 10 == 0 else 0)  # a tenth miss this month
            previous = 0
            for m in range(months):
                month = add_months(first_month, m)
                at = dt.datetime.combine(month + dt.timedelta(days=rng.randrange(0, 26)), dt.time(10), tzinfo=SH)
                at = min(at, NOW - dt.timedelta(hours=1)).astimezone(dt.UTC)
                value = round(project["progress"] * (m + 1) / reports)
                report_id += 1
                batch_reports.append({
                    "id": report_id, "project_id": project["id"], "person_id": contact,
                    "period": period_of_date(month), "kind": "progress" if value != previous else "no_change",
                    "created_at": at, "status": project["status"] if value else "not_started", "progress": value,
                    "investment_done": None, "milestone_ids": [], "text": "", "problems": "", "next_steps": "",
                    "undoes_id": None, "update_id": None,
                })
                if value != previous:
                    batch_changes.append({"project_id": project["id"], "at": at, "source": "report",
                                          "report_id": report_id, "person_id": contact, "field": "progress",
                                          "old": str(previous), "new": str(value)})
                    if previous == 0:
                        batch_changes.append({"project_id": project["id"], "at": at, "source": "report",
                                              "report_id": report_id, "person_id": contact, "field": "status",
                                              "old": "not_started", "new": "started"})
                    if value == 100:
                        batch_changes.append({"project_id": project["id"], "at": at, "source": "report",
                                              "report_id": report_id, "person_id": contact, "field": "status",
                                              "old": "started", "new": "completed"})
                previous = value
                if rng.random() < 0.01:  # taken back the same minute: the month counts only if reported again
                    report_id += 1
                    batch_reports.append({
                        "id": report_id, "project_id": project["id"], "person_id": contact,
                        "period": period_of_date(month), "kind": "undo", "created_at": at, "status": None,
                        "progress": None, "investment_done": None, "milestone_ids": [], "text": "", "problems": "",
                        "next_steps": "", "undoes_id": report_id - 1, "update_id": None,
                    })
            if len(batch_reports) >= 50_000:
                await flush()
        await flush()
        await s.commit()
    async with maker() as s:  # fresh statistics for the planners
        await s.execute(text("ANALYZE"))
        await s.commit()
        if s.get_bind().dialect.name == "sqlite":  # a running service has its WAL checkpointed
            await s.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


async def timed(label: str, step: Callable[[], Awaitable[str]], repeat: int = 1) -> float:
    """The best of `repeat` runs (the machine may be busy with other work), each printed."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        note = await step()
        times.append(time.perf_counter() - started)
    shown = " ".join(f"{t:.3f}" for t in times)
    print(f"    {label:<30} {min(times):6.3f} s  (runs: {shown})  {note}", flush=True)
    return min(times)


async def measure(maker: async_sessionmaker[AsyncSession], ctx: JobContext) -> dict[str, float]:
    get_job("alerts")  # import the job's module (and aiogram, for its buttons) before the clock starts
    async def alerts(at: dt.datetime) -> str:
        async with maker() as s:
            result = await run_job(s, "alerts", at, ctx)
        return result.summary()[:110]

    async def figures() -> str:
        async with maker() as s:
            data = await gather(s, NOW, SH, LightRules.from_settings(ctx.settings))
            city = figures_for(data, None, SH)
            for county_id, _ in data.counties:
                figures_for(data, county_id, SH)
        return (f"city {city.totals.completion_rate}%/{city.totals.start_rate}%, red {len(city.red)}, "
                f"yellow {len(city.yellow)}, missing {sum(m.projects for m in city.missing)}, "
                f"newly completed {len(city.completed)}")

    return {
        "alerts first": await timed("alert scan, first run", lambda: alerts(NOW)),
        "alerts": await timed("alert scan, steady", lambda: alerts(NOW + dt.timedelta(hours=1)), REPEAT),
        "digest": await timed("digest figures", figures, REPEAT),
    }


EXPLAINED = {
    "reported this month": "SELECT DISTINCT reports.project_id FROM reports WHERE reports.period = '2026-11' "
    "AND reports.kind IN ('progress', 'no_change') AND NOT (EXISTS (SELECT 1 FROM reports AS undo "
    "WHERE undo.undoes_id = reports.id AND undo.kind = 'undo'))",
    "progress this month": "SELECT changes.project_id, changes.old, changes.new FROM changes "
    "WHERE changes.at >= '2026-10-31 16:00:00' AND changes.field = 'progress' AND changes.source != 'create'",
}


async def explain(maker: async_sessionmaker[AsyncSession]) -> None:
    async with maker() as s:
        sqlite_db = s.get_bind().dialect.name == "sqlite"
        for label, sql in EXPLAINED.items():
            prefix = "EXPLAIN QUERY PLAN " if sqlite_db else "EXPLAIN "
            plan = [" | ".join(str(c) for c in row) for row in await s.execute(text(prefix + sql))]
            print(f"    plan, {label}:")
            for line in plan:
                print(f"      {line}")


async def one(url: str, projects: int, reports: int, data_dir: Path, show_plan: bool) -> dict[str, float]:
    await migrate(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    try:
        started = time.perf_counter()
        await build(maker, projects, reports)
        took = time.perf_counter() - started
        print(f"  {projects:,} projects, ~{projects * reports:,} reports: built in {took:.1f} s")
        settings = Settings(database_url=url, data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
        figures = await measure(maker, JobContext.from_settings(settings))
        if show_plan:
            await explain(maker)
        return figures
    finally:
        await engine.dispose()


async def main_async(args: argparse.Namespace) -> None:
    sizes = [int(n) for n in args.projects.split(",")]
    runs = [(n, args.reports) for n in sizes] + [(max(sizes), max(1, args.reports // 5))]
    table: list[tuple[str, int, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("SQLite (temporary file):")
        for index, (projects, reports) in enumerate(runs):
            url = f"sqlite+aiosqlite:///{folder / f'bench{index}.db'}"
            table.append(("SQLite", projects, reports,
                          await one(url, projects, reports, folder, args.explain and index == len(sizes) - 1)))
        if args.postgres:
            if not pg_answers(args.postgres):
                print(f"PostgreSQL at {args.postgres}: does not answer, skipped")
            else:
                print("PostgreSQL:")
                for index, (projects, reports) in enumerate(runs):
                    async with pg_database(args.postgres) as url:
                        table.append(("PostgreSQL", projects, reports,
                                      await one(url, projects, reports, folder,
                                                args.explain and index == len(sizes) - 1)))
    print()
    print(f"{'database':<11} {'projects':>9} {'reports':>9} {'alerts 1st':>11} {'alerts':>8} {'digest':>8}")
    for db, projects, reports, t in table:
        print(f"{db:<11} {projects:>9,} {projects * reports:>9,} {t['alerts first']:>10.3f}s "
              f"{t['alerts']:>7.3f}s {t['digest']:>7.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", default="1000,10000", help="comma-separated ledger sizes")
    parser.add_argument("--reports", type=int, default=50, help="monthly reports per project")
    parser.add_argument("--postgres", nargs="?", const=PG_DEFAULT, default=None,
                        help=f"also on PostgreSQL (an admin URL; a database is made and dropped; default {PG_DEFAULT})")
    parser.add_argument("--explain", action="store_true", help="print the query plans of the report/change queries")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
