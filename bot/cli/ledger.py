"""`qingshui import | export | template | stats`: the ledger file from the command line.

Results go to stdout; problems, warnings and progress to stderr. A rejected file prints one line
per problem and exits 1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.columns import format_table
from bot.errors import UserError
from bot.ledger.io import (
    ImportResult,
    LedgerRejected,
    describe,
    export_ledger,
    import_ledger,
    milestones_csv_path,
    sample_path,
    write_template,
)
from bot.ledger.queries import city_figures, county_figures
from bot.store.db import open_database
from bot.store.models import County, Milestone, Project
from bot.texts import render

LARGE_FILE_BYTES = 2_000_000  # show progress for a file this big even when stderr is not a terminal


class ProgressLine:
    """A counter on stderr: rewritten in place on a terminal, a line per quarter otherwise."""

    def __init__(self, lang: str, stream: TextIO, *, tty: bool) -> None:
        self.lang, self.stream, self.tty = lang, stream, tty
        self.last: tuple[str, int] = ("", -1)

    def __call__(self, stage: str, done: int, total: int) -> None:
        quarter = (done * 4 // total) if total else 4
        if not self.tty and (stage, quarter) == self.last:
            return
        self.last = (stage, quarter)
        text = render(self.lang, "cli_ledger.progress", stage=stage, done=done, total=total)
        self.stream.write(f"\r{text}\033[K" if self.tty else f"{text}\n")
        if self.tty and done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _progress(lang: str, *paths: Path | None) -> ProgressLine | None:
    tty = sys.stderr.isatty()
    large = any(p is not None and p.is_file() and p.stat().st_size >= LARGE_FILE_BYTES for p in paths)
    return ProgressLine(lang, sys.stderr, tty=tty) if tty or large else None


async def main(args: argparse.Namespace, settings: Settings) -> int:
    lang = settings.default_language
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
            if args.command == "import":
                return await _import(session, args, settings, lang)
            if args.command == "export":
                return await _export(session, Path(args.file), lang)
            if args.command == "template":
                path = await write_template(session, Path(args.file), lang=lang)
                print(render(lang, "cli_ledger.template_written", path=path))
                return 0
            return await _stats(session, lang)
    except LedgerRejected as rejected:
        _report(rejected, lang)
        return 1


def _report(rejected: LedgerRejected, lang: str) -> None:
    for warning in rejected.warnings:
        print(render(lang, "cli_ledger.warning", line=describe(warning, lang)), file=sys.stderr)
    for issue in rejected.issues:
        print(describe(issue, lang), file=sys.stderr)
    if len(rejected.issues) > 1 or rejected.issues[0].row is not None:
        print(render(lang, "cli_ledger.rejected", count=len(rejected.issues)), file=sys.stderr)


async def _import(session: AsyncSession, args: argparse.Namespace, settings: Settings, lang: str) -> int:
    if args.sample and args.file:
        raise UserError(render(lang, "cli_ledger.sample_and_file"), exit_code=2)
    if not args.sample and not args.file:
        raise UserError(render(lang, "cli_ledger.need_file"), exit_code=2)
    path = sample_path() if args.sample else Path(args.file)
    ms_path = Path(args.milestones) if args.milestones else None
    result = await import_ledger(
        session, path, milestones_path=ms_path, new_counties=args.new_counties or args.sample, tz=settings.tz,
        progress=_progress(lang, path, ms_path),
    )
    _print_result(result, lang)
    return 0


def _print_result(result: ImportResult, lang: str) -> None:
    for warning in result.warnings:
        print(render(lang, "cli_ledger.warning", line=describe(warning, lang)), file=sys.stderr)
    if result.nothing_to_import:
        print(render(lang, "cli_ledger.nothing"))
        return
    if result.counties_created:
        print(render(lang, "cli_ledger.counties_created", names=result.counties_created))
    print(render(lang, "cli_ledger.summary", created=result.created, updated=result.updated,
                 unchanged=result.unchanged, milestones=result.milestones_changed, changes=result.change_rows))


async def _export(session: AsyncSession, path: Path, lang: str) -> int:
    await export_ledger(session, path, lang=lang, progress=_progress(lang) if sys.stderr.isatty() else None)
    projects = await session.scalar(select(func.count()).select_from(Project)) or 0
    milestones = await session.scalar(select(func.count()).select_from(Milestone)) or 0
    counties = await session.scalar(select(func.count()).select_from(County)) or 0
    is_csv = path.suffix.lower() == ".csv"
    print(render(lang, "cli_ledger.exported", path=path, projects=projects, milestones=milestones,
                 counties=0 if is_csv else counties))
    if is_csv:
        print(render(lang, "cli_ledger.exported_csv", path=path, milestones_path=milestones_csv_path(path)))
    return 0


async def _stats(session: AsyncSession, lang: str) -> int:
    city = await city_figures(session)
    rows = await county_figures(session)
    if city.total == 0 and not rows:
        print(render(lang, "cli_ledger.stats_empty"))
        return 0
    print(render(lang, "cli_ledger.stats_title", total=city.total, completed=city.completed, started=city.started,
                 not_started=city.not_started, completion_rate=city.completion_rate, start_rate=city.start_rate))
    print()
    table = [render(lang, "cli_ledger.stats_columns").split("|")]
    for figures in rows:
        t = figures.totals
        table.append([figures.name, str(t.total), str(t.completed), str(t.started), str(t.not_started),
                      f"{t.completion_rate}%", f"{t.start_rate}%"])
    table.append([render(lang, "cli_ledger.stats_city"), str(city.total), str(city.completed), str(city.started),
                  str(city.not_started), f"{city.completion_rate}%", f"{city.start_rate}%"])
    for line in format_table(table, right=[False] + [True] * 6):
        print(line)
    return 0
