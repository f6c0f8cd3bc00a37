"""Scale: the alert scan, the digest figures, one county's /list page and a project's dossier (card and the
first timeline page), each timed as the median of several runs on ledgers of 1,000, 10,000 and 100,000
projects, to show how each grows. The ledgers come from bench/digest.py's builder (counties, contacts,
leaders, two milestones per project, monthly reports with their dossier changes, a tenth of the projects
not yet reported this month, 1 % of reports undone).

    .venv/bin/python bench/scale.py [--projects 1000,10000,100000] [--reports 50] [--max-reports 500000]
                                    [--runs 5] [--postgres [URL]]

Reports: 50 a project while that stays under --max-reports (500,000: the 10,000-project ledger's), then
as many a project as fit (100,000 projects get 5 each): building 5 million reports would take longer
than everything else together, and the scan and digest read projects, not reports (bench/digest.py).

Timed, each on a fresh session as in the service:
- alert scan: the alerts job an hour after its first run (what every run costs); the first run, which opens
  every problem and queues its step-1 messages, is shown once, without a target (a one-off burst);
- digest figures: bot.services.digest.gather and the figures of the city and every county (no chart, no workbook),
  with the garbage collector paused as the digest job runs them;
- /list: the first page of the first county as the chat shows it (handlers/listing.py's page: the
  county's list with lights and this month's update, rendered with its buttons);
- dossier: the project looked up by its code (as the access check does), its card, and the first page of
  its timeline, rendered (bot/services/project_views.py, handlers/project.py).
Targets: alert scan and digest figures under 1 s, /list and dossier under 100 ms, at 10,000 projects.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench._common import PG_DEFAULT, Figure, catch_up_sequences, pg_answers, pg_database, print_figures
from bench.digest import NOW, SH, build
from bot.config import Settings
from bot.domain.lights import LightRules
from bot.ledger.scan import collector_paused
from bot.services.digest import figures_for, gather
from bot.services.project_views import project_by_code, project_card
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import County, Project
from bot.texts import Texts
from handlers.context import Ctx
from handlers.listing import _page as list_page
from handlers.project import _timeline_page as timeline_page
from jobs.base import JobContext
from jobs.registry import get_job, run_job

TARGETS = {"alert scan": 1.0, "digest figures": 1.0, "/list page": 0.1, "dossier": 0.1}
TARGET_SIZE = 10_000  # the targets are stated for this ledger (and 500,000 reports)


@dataclass
class SizeResult:
    backend: str
    projects: int
    reports: int
    build_seconds: float
    first_alerts: float = 0.0
    medians: dict[str, float] = field(default_factory=dict)


async def median_of(runs: int, step: Callable[[int], Awaitable[object]]) -> float:
    """The median of `runs` timed calls after one untimed call (warm caches, compiled templates)."""
    await step(-1)
    times = []
    for n in range(runs):
        started = time.perf_counter()
        await step(n)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(maker: async_sessionmaker[AsyncSession], settings: Settings, runs: int, result: SizeResult) -> None:
    ctx = JobContext.from_settings(settings)
    rules = LightRules.from_settings(settings)
    texts = Texts(settings.default_language)
    get_job("alerts")  # import the job (and aiogram, for its buttons) before the clock starts

    async def alerts(at: dt.datetime) -> None:
        async with maker() as s:
            await run_job(s, "alerts", at, ctx)

    started = time.perf_counter()
    await alerts(NOW)
    result.first_alerts = time.perf_counter() - started

    async def steady(n: int) -> None:  # a later moment each run: each one is a real, new scan
        await alerts(NOW + dt.timedelta(hours=2 + n))

    async def digest(_: int) -> None:
        async with maker() as s:
            with collector_paused():  # as the digest job computes them (jobs/registry.run_job)
                await digest_figures(s)

    async def digest_figures(s: AsyncSession) -> None:
        data = await gather(s, NOW, SH, rules)
        figures_for(data, None, SH)
        for county_id, _name in data.counties:
            figures_for(data, county_id, SH)

    def handler_ctx(s: AsyncSession) -> Ctx:  # what a handler gets for a person not bound (none is needed)
        return Ctx(person=None, session=s, texts=texts, lang=settings.default_language, clock=lambda: NOW,
                   settings=settings)

    async with maker() as s:
        county_id = int(await s.scalar(select(County.id).order_by(County.sort_order, County.id).limit(1)) or 0)
        code = str(await s.scalar(select(Project.code).order_by(Project.id).limit(1)))

    async def listing(_: int) -> None:
        async with maker() as s:
            await list_page(handler_ctx(s), county_id, 0)

    async def dossier(_: int) -> None:
        async with maker() as s:
            project = await project_by_code(s, code)
            assert project is not None
            card = await project_card(s, project, now=NOW, tz=SH, rules=rules)
            texts(settings.default_language, "project.card", card=card)
            await timeline_page(handler_ctx(s), project, 0)

    result.medians["alert scan"] = await median_of(runs, steady)
    result.medians["digest figures"] = await median_of(runs, digest)
    result.medians["/list page"] = await median_of(runs, listing)
    result.medians["dossier"] = await median_of(runs, dossier)


async def one_size(backend: str, url: str, data_dir: Path, projects: int, per_project: int, runs: int) -> SizeResult:
    await migrate(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    try:
        started = time.perf_counter()
        await build(maker, projects, per_project)
        await catch_up_sequences(maker)
        result = SizeResult(backend, projects, projects * per_project, time.perf_counter() - started)
        print(f"  {backend}: {projects:,} projects, ~{projects * per_project:,} reports built in "
              f"{result.build_seconds:.0f} s", flush=True)
        settings = Settings(database_url=url, data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
        await measure(maker, settings, runs, result)
        print("    " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.medians.items())
              + f"; first alert run {result.first_alerts:.1f} s", flush=True)
        return result
    finally:
        await engine.dispose()


def print_growth(results: list[SizeResult]) -> None:
    names = list(TARGETS)
    header = f"{'database':<11} {'projects':>9} {'reports':>9} " + " ".join(f"{n:>15}" for n in names)
    print(header + f" {'first alerts':>13}")
    previous: SizeResult | None = None
    for r in results:
        cells = []
        for name in names:
            value = f"{r.medians[name] * 1000:.0f} ms"
            if previous is not None and previous.backend == r.backend and previous.medians.get(name):
                value += f" ×{r.medians[name] / previous.medians[name]:.1f}"
            cells.append(f"{value:>15}")
        print(f"{r.backend:<11} {r.projects:>9,} {r.reports:>9,} " + " ".join(cells) + f" {r.first_alerts:>12.1f}s")
        previous = r
    print("(×n: how many times the previous, smaller ledger's time)")


def figures(results: list[SizeResult]) -> list[Figure]:
    """The targets apply to the 10,000-project ledger (the largest one measured if smaller)."""
    out = []
    for backend in dict.fromkeys(r.backend for r in results):
        own = [r for r in results if r.backend == backend]
        at = min(own, key=lambda r: (abs(r.projects - TARGET_SIZE), -r.projects))
        for name, target in TARGETS.items():
            out.append(Figure(f"scale {backend} {at.projects:,} projects: {name}", round(at.medians[name] * 1000, 1),
                              target * 1000, "ms"))
    return out


async def run(sizes: list[int], reports: int, max_reports: int, runs: int, postgres: str | None) -> list[Figure]:
    plan = [(n, max(1, min(reports, max_reports // n))) for n in sizes]
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="qs_scale_") as tmp:
        folder = Path(tmp)
        for index, (projects, per_project) in enumerate(plan):
            db = folder / f"scale{index}.db"
            results.append(await one_size("SQLite", f"sqlite+aiosqlite:///{db}", folder, projects, per_project, runs))
            db.unlink()
            for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                extra.unlink(missing_ok=True)
        if postgres and pg_answers(postgres):
            for projects, per_project in plan:
                async with pg_database(postgres) as url:
                    results.append(await one_size("PostgreSQL", url, folder, projects, per_project, runs))
        elif postgres:
            print(f"PostgreSQL at {postgres}: does not answer, skipped")
    print()
    print_growth(results)
    print()
    found = figures(results)
    print_figures(found)
    return found


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", default="1000,10000,100000", help="comma-separated ledger sizes")
    parser.add_argument("--reports", type=int, default=50, help="monthly reports per project")
    parser.add_argument("--max-reports", type=int, default=500_000, help="fewer reports a project above this")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (the median is shown)")
    parser.add_argument("--postgres", nargs="?", const=PG_DEFAULT, default=None,
                        help=f"also on PostgreSQL (an admin URL; a database is made and dropped; default {PG_DEFAULT})")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.projects.split(",")]
    return asyncio.run(run(sizes, args.reports, args.max_reports, args.runs, args.postgres))


if __name__ == "__main__":
    main()
