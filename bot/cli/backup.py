"""`qingshui backup FILE` and `qingshui restore FILE`: the whole instance as one archive (bot/store/backup.py).

`restore` is the one command that does not bring the database to the newest schema before it starts:
it must find no database, and it migrates what it restored."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from bot.config import Settings
from bot.errors import UserError
from bot.store.backup import Refused, backup, restore, restored_counts
from bot.texts import render


async def main(args: argparse.Namespace, settings: Settings) -> int:
    lang = settings.default_language
    path = Path(args.file)
    try:
        if args.command == "backup":
            manifest = await backup(settings, path)
            print(render(lang, "cli_backup.written", path=path, m=manifest))
            return 0
        manifest = await restore(settings, path)
        counts = await restored_counts(settings) if manifest.database == "sqlite" else {}
        made = dt.datetime.fromisoformat(manifest.created_at).astimezone(settings.tz)
        print(render(lang, "cli_backup.restored", path=path, data_dir=settings.data_dir, m=manifest, made=made,
                     counts=counts))
        return 0
    except Refused as refused:
        raise UserError(render(lang, f"cli_backup.{refused.code}", **refused.detail),
                        exit_code=refused.exit_code) from None
