"""`qingshui demo [--out DIR]`: the whole service offline through one simulated month (bot.demo.runner), every
message, chart and workbook written to DIR (default DATA_DIR/demo, cleared first) with an index page,
then a short summary. Needs no BOT_TOKEN (one set is ignored) and no network.

Exit status 0 when every message was accepted and sent and nothing failed; 1 otherwise (the summary
says what went wrong)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.config import Settings
from bot.demo.story import FIRST_DAY, LAST_DAY
from bot.telegram import lazy_aiogram
from bot.texts import render

# What the service logs at INFO (polling started, sender stats …) would bury the summary.
QUIET_LOGGERS = ("aiogram", "bot.telegram.sender", "bot.scheduler", "bot.store.lease", "handlers")


async def main(args: argparse.Namespace, settings: Settings) -> int:
    lang = settings.default_language
    out = Path(args.out) if args.out else settings.data_dir / "demo"
    print(render(lang, "cli_demo.starting", first=FIRST_DAY, last=LAST_DAY, out=str(out.resolve())),
          file=sys.stderr, flush=True)
    lazy_aiogram.install()  # before aiogram is imported: its types are built on first use
    from bot.demo.output import summary_text, write_pages
    from bot.demo.runner import run_demo  # aiogram, the handlers and the jobs load only for the demo

    quieted = [] if getattr(args, "verbose", False) else [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in quieted]
    for logger in quieted:
        logger.setLevel(logging.WARNING)
    try:
        result = await run_demo(settings, out)
    finally:
        for logger, level in zip(quieted, levels, strict=True):
            logger.setLevel(level)
    write_pages(result, lang, settings.tz)
    print(summary_text(result, lang))
    return 0 if result.ok else 1
