"""The command line: `python -m bot …` (or `qingshui …`). Each command lives in bot/cli/."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence

from bot.cli.parser import Parser
from bot.cli.preflight import preflight
from bot.config import Settings, SettingsError, command_line_basics, load_settings
from bot.domain.states import Role
from bot.errors import UserError
from bot.texts import render

# command -> module in bot.cli with `async def main(args, settings) -> int`
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
    "channel": "channel",
    "bulletin": "bulletin",
}


def build_parser(lang: str = "zh") -> argparse.ArgumentParser:
    def h(key: str) -> str:
        return render(lang, f"cli_help.{key}")

    parser = Parser(prog="qingshui", description=h("program"), lang=lang)
    parser.add_argument("-v", "--verbose", action="store_true", help=h("verbose"))
    parser.add_argument("--debug", action="store_true", help=h("debug"))
    sub = parser.add_subparsers(dest="command", required=True, metavar=h("metavar_command"))

    sub.add_parser("run", help=h("run"))
    demo = sub.add_parser("demo", help=h("demo"))
    demo.add_argument("--out", default=None, metavar=h("metavar_dir"), help=h("demo_out"))

    imp = sub.add_parser("import", help=h("import_"))
    imp.add_argument("file", nargs="?", metavar=h("metavar_file"), help=h("import_file"))
    imp.add_argument("--sample", action="store_true", help=h("import_sample"))
    imp.add_argument("--new-counties", action="store_true", help=h("import_new_counties"))
    imp.add_argument("--milestones", default=None, metavar=h("metavar_file"), help=h("import_milestones"))

    exp = sub.add_parser("export", help=h("export"))
    exp.add_argument("file", metavar=h("metavar_file"), help=h("export_file"))
    tpl = sub.add_parser("template", help=h("template"))
    tpl.add_argument("file", metavar=h("metavar_file"), help=h("template_file"))
    sub.add_parser("stats", help=h("stats"))

    inv = sub.add_parser("invite", help=h("invite"))
    inv.add_argument("--role", required=True, choices=[role.value for role in Role],
                     help=h("invite_role"))
    inv.add_argument("--county", default=None, metavar=h("metavar_county"), help=h("invite_county"))
    inv.add_argument("--name", default="", metavar=h("metavar_name"), help=h("invite_name"))
    sub.add_parser("people", help=h("people"))

    jobs = sub.add_parser("jobs", help=h("jobs"))
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar=h("metavar_action"))
    jobs_sub.add_parser("list", help=h("jobs_list"))
    run = jobs_sub.add_parser("run", help=h("jobs_run"))
    run.add_argument("name", choices=["reminders", "alerts", "digest"])
    run.add_argument("--at", default=None, metavar=h("metavar_at"), help=h("jobs_at"))

    sub.add_parser("backup", help=h("backup")).add_argument("file", metavar=h("metavar_file"), help=h("backup_file"))
    sub.add_parser("restore", help=h("restore")).add_argument("file", metavar=h("metavar_file"), help=h("restore_file"))
    _channel_parser(sub, h)
    bulletin = sub.add_parser("bulletin", help=h("bulletin"))
    bulletin.add_argument("--month", default=None, metavar=h("metavar_month"), help=h("bulletin_month"))
    bulletin.add_argument("file", metavar=h("metavar_file"), help=h("bulletin_file"))
    return parser


def _channel_parser(sub: argparse._SubParsersAction, h: Callable[[str], str]) -> None:  # type: ignore[type-arg]
    channel = sub.add_parser("channel", help=h("channel"))
    actions = channel.add_subparsers(dest="channel_command", required=True, metavar=h("metavar_action"))
    add = actions.add_parser("add", help=h("channel_add"))
    add.add_argument("name", metavar=h("metavar_name"))
    add.add_argument("--kind", required=True, choices=["wecom", "dingtalk", "feishu", "email"], help=h("channel_kind"))
    add.add_argument("--target", required=True, help=h("channel_target"))
    add.add_argument("--secret", default="", help=h("channel_secret"))
    add.add_argument("--county", default=None, metavar=h("metavar_county"), help=h("channel_county"))
    add.add_argument("--send", default="digest,alerts", help=h("channel_send"))
    actions.add_parser("list", help=h("channel_list"))
    for action in ("test", "remove"):
        actions.add_parser(action, help=h(f"channel_{action}")).add_argument("name", metavar=h("metavar_name"))


def main(argv: Sequence[str] | None = None) -> int:
    # The language and log level come first and leniently: a bad setting is reported below, in
    # DEFAULT_LANGUAGE when that one is fine.
    basics = command_line_basics()
    args = build_parser(basics.language).parse_args(argv)
    debug = args.debug or basics.debug
    logging.basicConfig(
        level=logging.DEBUG if args.verbose or debug else basics.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiogram.event", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings()
        module = importlib.import_module(f"bot.cli.{COMMANDS[args.command]}")
        return int(asyncio.run(_command(module.main, args, settings)) or 0)
    except (SettingsError, UserError) as exc:
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(exc, file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        return 130


async def _command(run: Callable[[argparse.Namespace, Settings], Awaitable[int | None]],
                   args: argparse.Namespace, settings: Settings) -> int:
    await preflight(settings, args.command)
    return int(await run(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
