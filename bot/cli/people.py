"""`qingshui invite --role ROLE [--county NAME] [--name NAME]` and `qingshui people`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging

from aiogram.exceptions import TelegramAPIError

from bot.config import Settings
from bot.domain.columns import format_table
from bot.errors import UserError
from bot.services.people import InviteError, county_for_invite, create_invite, list_people, pending_invites
from bot.store.db import open_database
from bot.store.models import Person
from bot.telegram.app import build_bot
from bot.texts import render

log = logging.getLogger(__name__)
GET_ME_SECONDS = 10


async def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "invite":
        print(await invite(settings, role=args.role, county_name=args.county, name=args.name or ""))
    else:
        print(await people(settings))
    return 0


async def bot_username(settings: Settings) -> str | None:
    """The bot's @username: asked from Telegram when BOT_TOKEN is set, else BOT_USERNAME."""
    if settings.bot_token is not None and settings.bot_token.get_secret_value().strip():
        bot = build_bot(settings)
        try:
            me = await asyncio.wait_for(bot.get_me(), GET_ME_SECONDS)
            if me.username:
                return me.username
        except (TelegramAPIError, TimeoutError, OSError) as exc:
            log.warning("could not ask Telegram for the bot's name: %r", exc)
        finally:
            await bot.session.close()
    return (settings.bot_username or "").strip().lstrip("@") or None


async def invite(settings: Settings, *, role: str, county_name: str | None, name: str) -> str:
    lang = settings.default_language
    async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
        county = None
        if county_name:
            county, suggestion, any_known = await county_for_invite(session, county_name)
            if county is None:
                raise UserError(render(lang, "cli_people.unknown_county", county=county_name, suggestion=suggestion,
                                       none_known=not any_known))
        try:
            code, row = await create_invite(session, role=role, county=county, name=name,
                                            ttl=dt.timedelta(days=settings.invite_ttl_days))
        except InviteError as exc:
            raise UserError(render(lang, "cli_people.invite_error", reason=exc.code, role=role)) from None
    username = await bot_username(settings)
    return render(
        lang, "cli_people.invite", code=code, link=f"https://t.me/{username}?start={code}" if username else None,
        role=role, county=county.name if county else "", invitee=row.name,
        expires=row.expires_at.astimezone(settings.tz),
    )


async def people(settings: Settings, now: dt.datetime | None = None) -> str:
    """Who is bound, then the invites still waiting to be used."""
    lang = settings.default_language
    async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
        bound = await list_people(session)
        waiting = await pending_invites(session, now)
    lines = [render(lang, "cli_people.nobody")] if not bound else [*_people_table(bound, lang),
                                                                   render(lang, "cli_people.total", count=len(bound))]
    if waiting:
        header = [render(lang, f"cli_people.column_{c}") for c in ("role", "county", "name", "expires")]
        rows = [header] + [
            [render(lang, "common.role", code=i.role), i.county or render(lang, "common.city"), i.name or "—",
             render(lang, "cli_people.expires", at=i.expires_at.astimezone(settings.tz))]
            for i in waiting
        ]
        lines += ["", render(lang, "cli_people.pending_title", count=len(waiting)), *format_table(rows)]
    return "\n".join(lines)


def _people_table(bound: list[Person], lang: str) -> list[str]:
    header = [render(lang, f"cli_people.column_{c}") for c in ("name", "role", "county", "reachable", "language")]
    rows = [header] + [
        [
            p.name,
            render(lang, "common.role", code=p.role),
            p.county.name if p.county else render(lang, "common.city"),
            render(lang, "cli_people.reachable", reachable=p.reachable, reason=p.unreachable_reason),
            p.language,
        ]
        for p in bound
    ]
    return format_table(rows)
