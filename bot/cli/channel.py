"""`qingshui channel add|list|test|remove`: the group robots and mailboxes that get digests and alerts
(README "Channels")."""

from __future__ import annotations

import argparse

import aiohttp

from bot.channels.base import Delivery, Target
from bot.channels.compose import listing_rows, test_steps
from bot.channels.kinds import module
from bot.channels.store import ChannelError, add_channel, find_channel, list_channels, remove_channel, target_of
from bot.config import Settings
from bot.domain.columns import format_table
from bot.errors import UserError
from bot.services.people import county_for_invite
from bot.store.db import open_database
from bot.texts import render


async def main(args: argparse.Namespace, settings: Settings) -> int:
    lang = settings.default_language
    try:
        async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
            action = args.channel_command
            if action == "add":
                county = None
                if args.county:
                    county, suggestion, _ = await county_for_invite(session, args.county)
                    if county is None:
                        raise ChannelError("unknown_county", county=args.county, suggestion=suggestion or "")
                if args.kind == "email" and not (settings.smtp_url and settings.smtp_from):
                    raise ChannelError("no_smtp")
                channel = await add_channel(session, name=args.name, kind=args.kind, target=args.target,
                                            secret=args.secret, county=county, sends=args.send)
                print(render(lang, "cli_channel.added", channel=channel.name, kind=channel.kind,
                             county=county.name if county else "", sends=channel.sends))
            elif action == "remove":
                channel = await remove_channel(session, args.name)
                print(render(lang, "cli_channel.removed", channel=channel.name))
            elif action == "list":
                print(listing(listing_rows(await list_channels(session), settings.tz), lang))
            else:
                target = target_of(await find_channel(session, args.name))
                return await test(target, settings)
    except ChannelError as exc:
        raise UserError(render(lang, "cli_channel.error", code=exc.code, details=exc.details)) from None
    return 0


def listing(rows: list[dict[str, object]], lang: str) -> str:
    if not rows:
        return render(lang, "cli_channel.empty")
    columns = ("name", "kind", "scope", "sends", "target", "secret", "last_ok", "queue", "last_error")
    table = [[render(lang, "cli_channel.column", code=c) for c in columns]]
    for r in rows:
        table.append([
            str(r["name"]), str(r["kind"]), str(r["county"] or render(lang, "cli_channel.city")),
            ",".join(r["sends"]),  # type: ignore[arg-type]
            str(r["target"]), render(lang, "cli_channel.secret", is_set=r["secret"]),
            render(lang, "cli_channel.last_ok", at=r["last_ok"]) if r["last_ok"] else render(lang, "cli_channel.never"),
            f"{r['pending']}/{r['dead']}",
            render(lang, "cli_channel.last_error", error=str(r["last_error"])[:80], at=r["last_error_at"]),
        ])
    return "\n".join(format_table(table))


async def test(target: Target, settings: Settings) -> int:
    """Send the test message straight away (not through the outbox) and print the robot's answer."""
    lang = settings.default_language
    kind = module(target.kind)
    answers = []
    async with aiohttp.ClientSession() as http:
        ctx = Delivery(http=http, data_dir=settings.data_dir, smtp_url=settings.smtp_url, smtp_from=settings.smtp_from)
        for _, method, payload in test_steps(target.kind, lang, target.name):
            outcome = await kind.deliver(target, method, payload, ctx)
            if outcome.state != "sent":
                print(render(lang, "cli_channel.test_failed", channel=target.name, state=outcome.state,
                             answer=outcome.reason))
                return 1
            answers.append(outcome.reason)
    print(render(lang, "cli_channel.test_sent", channel=target.name, answer="; ".join(answers)))
    return 0
