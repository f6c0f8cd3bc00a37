"""`qingshui run`: the service (bot, sender, scheduler) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse

from bot.config import Settings
from bot.telegram import lazy_aiogram


async def main(args: argparse.Namespace, settings: Settings) -> int:
    settings.require_token()  # one line naming BOT_TOKEN before anything else is imported or logged
    lazy_aiogram.install()  # before aiogram is imported: its types are built on first use
    from bot.telegram.app import run_service

    await run_service(settings)
    return 0
