"""`qingshui bulletin [--month YYYY-MM] FILE.docx`: the monthly bulletin (README "Bulletin") on demand.

Without --month: the latest month whose update deadline has passed, the one the digest sends."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.config import Settings
from bot.domain.clock import utcnow
from bot.domain.periods import parse_period
from bot.errors import UserError
from bot.services.bulletin import MonthNotBegun, build, due_month, write_docx
from bot.store.db import open_database
from bot.texts import render


async def main(args: argparse.Namespace, settings: Settings) -> int:
    lang = settings.default_language
    now = utcnow()
    month = args.month or due_month(now, settings)
    try:
        parse_period(month)
    except ValueError:
        raise UserError(render(lang, "cli_bulletin.bad_month", month=month), exit_code=2) from None
    path = Path(args.file)
    if path.suffix.lower() != ".docx":
        raise UserError(render(lang, "cli_bulletin.not_docx", path=path), exit_code=2)
    async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
        try:
            bulletin = await build(session, month, now, settings)
        except MonthNotBegun:
            raise UserError(render(lang, "cli_bulletin.not_begun", month=month), exit_code=2) from None
    await asyncio.to_thread(write_docx, bulletin, path, lang)
    totals = bulletin.figures.totals
    print(render(lang, "cli_bulletin.written", path=path, month=month, day=bulletin.figures.today,
                 completion_rate=totals.completion_rate, start_rate=totals.start_rate))
    return 0
