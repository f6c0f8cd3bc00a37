"""The command line: `python -m bot …` (or `qingshui …`). Each command lives in bot/commands/."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence

from bot.config import SettingsError, load_settings
from bot.errors import UserError
from bot.texts import render

# command -> module in bot.commands with `async def main(args, settings) -> int`
COMMANDS = {
    "run": "service",
    "demo": "demo",
    "import": "ledger",
    "export": "ledger",
    "template": "ledger",
    "stats": "ledger",
    "invite": "people",
    "people": "people",
    "jobs": "jobs",
    "backup": "backup",
    "restore": "backup",
}


def build_parser(lang: str = "zh") -> argparse.ArgumentParser:
    def h(key: str) -> str:
        return render(lang, f"cli_help.{key}")

    parser = argparse.ArgumentParser(prog="qingshui", description=h("program"))
    parser.add_argument("-v", "--verbose", action="store_true", help=h("verbose"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help=h("run"))
    demo = sub.add_parser("demo", help=h("demo"))
    demo.add_argument("--out", default=None, help=h("demo_out"))

    imp = sub.add_parser("import", help=h("import_"))
    imp.add_argument("file", nargs="?", help=h("import_file"))
    imp.add_argument("--sample", action="store_true", help=h("import_sample"))
    imp.add_argument("--new-counties", action="store_true", help=h("import_new_counties"))
    imp.add_argument("--milestones", default=None, help=h("import_milestones"))

    exp = sub.add_parser("export", help=h("export"))
    exp.add_argument("file", help=h("export_file"))
    tpl = sub.add_parser("template", help=h("template"))
    tpl.add_argument("file", help=h("template_file"))
    sub.add_parser("stats", help=h("stats"))

    inv = sub.add_parser("invite", help=h("invite"))
    inv.add_argument("--role", required=True, choices=["admin", "leader", "county_leader", "contact"],
                     help=h("invite_role"))
    inv.add_argument("--county", default=None, help=h("invite_county"))
    inv.add_argument("--name", default="", help=h("invite_name"))
    sub.add_parser("people", help=h("people"))

    jobs = sub.add_parser("jobs", help=h("jobs"))
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jobs_sub.add_parser("list", help=h("jobs_list"))
    run = jobs_sub.add_parser("run", help=h("jobs_run"))
    run.add_argument("name", choices=["reminders", "alerts", "digest"])
    run.add_argument("--at", default=None, help=h("jobs_at"))

    sub.add_parser("backup", help=h("backup")).add_argument("file", help=h("backup_file"))
    sub.add_parser("restore", help=h("restore")).add_argument("file", help=h("restore_file"))
    return parser


def _help_language() -> str:
    """The language for --help: DEFAULT_LANGUAGE when the settings load, else Chinese (a bad setting is
    reported after parsing, in one line)."""
    try:
        return load_settings().default_language
    except SettingsError:
        return "zh"

def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(_help_language()).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiogram.event", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings()
        module = importlib.import_module(f"bot.commands.{COMMANDS[args.command]}")
        return int(asyncio.run(module.main(args, settings)) or 0)
    except (SettingsError, UserError) as exc:
        print(exc, file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
