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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qingshui", description="清水 Qingshui — the ledger bot")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the service: bot, scheduler and sender")
    demo = sub.add_parser("demo", help="the whole service offline on the sample ledger, one simulated month")
    demo.add_argument("--out", default=None, help="output folder (default DATA_DIR/demo)")

    imp = sub.add_parser("import", help="import the ledger from .xlsx or .csv (all or nothing)")
    imp.add_argument("file", nargs="?", help="the ledger file")
    imp.add_argument("--sample", action="store_true", help="load the sample ledger shipped with Qingshui")
    imp.add_argument("--new-counties", action="store_true", help="allow counties not yet known")
    imp.add_argument("--milestones", default=None, help="a second CSV with the milestones (for .csv imports)")

    exp = sub.add_parser("export", help="export the ledger to .xlsx or .csv")
    exp.add_argument("file")
    tpl = sub.add_parser("template", help="write an empty ledger workbook to fill in")
    tpl.add_argument("file")
    sub.add_parser("stats", help="the city's totals and rates, then one row per county")

    inv = sub.add_parser("invite", help="create a one-time invite and print its link")
    inv.add_argument("--role", required=True, choices=["admin", "leader", "county_leader", "contact"])
    inv.add_argument("--county", default=None)
    inv.add_argument("--name", default="")
    sub.add_parser("people", help="who is bound, with role, county and reachability")

    jobs = sub.add_parser("jobs", help="list the scheduled jobs or run one now")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jobs_sub.add_parser("list", help="each job with its next run")
    run = jobs_sub.add_parser("run", help="run a job now, as if the clock read --at")
    run.add_argument("name", choices=["reminders", "alerts", "digest"])
    run.add_argument("--at", default=None, help="ISO date-time, in the city's zone unless it has an offset")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
