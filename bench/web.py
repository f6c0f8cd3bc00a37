"""The cockpit's city page at scale: its data (bot.web.views.city_view: the digest's city figures, the change
since last month and the trend) and the page rendered, on a ledger of N projects with R monthly reports each,
in a temporary SQLite file (and PostgreSQL with --postgres). Target: the city page's data under 300 ms at
10,000 projects. Also shown, for comparison: a county's list (一县一清单, with every project's forecast) and
the digest's figures (which now include every unfinished project's forecast).

    .venv/bin/python bench/web.py [--projects 10000] [--reports 12] [--postgres [URL]]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from bench._common import PG_DEFAULT, Figure, median_seconds, pg_answers, pg_database, print_figures
from bench.digest import NOW, SH, build
from bot.config import Settings
from bot.domain.lights import LightRules
from bot.services.digest import figures_for, gather
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.texts import render
from bot.web.charts import trend_chart
from bot.web.views import city_view, county_view

RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults

TARGET_MS = 300
RUNS = 5


async def one(url: str, projects: int, reports: int, data_dir: Path, label: str) -> list[Figure]:
    await migrate(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    await build(maker, projects, reports)
    settings = Settings(database_url=url, data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]

    async def data() -> object:
        async with maker() as s:
            return await city_view(s, NOW, settings)

    async def page() -> object:
        async with maker() as s:
            view = await city_view(s, NOW, settings)
        person = type("Reader", (), {"name": "市领导", "role": "leader"})()
        return render("zh", "web_city.city", v=view, chart=trend_chart(view.trend), person=person)

    async def county() -> object:
        async with maker() as s:
            return await county_view(s, 1, NOW, settings)

    async def digest() -> object:
        async with maker() as s:
            return figures_for(await gather(s, NOW, SH, RULES), None, SH)

    figures = [Figure(f"city page data, {projects:,} projects, {label}", await median_seconds(data, RUNS) * 1000,
                      TARGET_MS, "ms")]
    figures.append(Figure(f"city page rendered, {label}", await median_seconds(page, RUNS) * 1000, TARGET_MS * 2,
                          "ms"))
    figures.append(Figure(f"one county's list with forecasts ({projects // 11:,}), {label}",
                          await median_seconds(county, RUNS) * 1000, TARGET_MS * 2, "ms"))
    figures.append(Figure(f"digest figures with forecasts, {label}", await median_seconds(digest, 3) * 1000, 1000,
                          "ms"))
    await engine.dispose()
    return figures


async def main_async(args: argparse.Namespace) -> None:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        figures += await one(f"sqlite+aiosqlite:///{folder}/bench.db", args.projects, args.reports, Path(folder),
                             "SQLite")
        if args.postgres is not None:
            admin = args.postgres or PG_DEFAULT
            if pg_answers(admin):
                async with pg_database(admin) as url:
                    figures += await one(url, args.projects, args.reports, Path(folder), "PostgreSQL")
            else:
                print(f"PostgreSQL at {admin} does not answer: skipped")
    print_figures(figures, f"cockpit, {args.projects:,} projects × {args.reports} reports (median of {RUNS})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=12)
    parser.add_argument("--postgres", nargs="?", const="", default=None, metavar="URL")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
