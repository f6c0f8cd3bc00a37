"""/invite for administrators: role and county by buttons, or `/invite ROLE [COUNTY] [NAME]`."""

from __future__ import annotations

import datetime as dt

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.clock import Clock
from bot.domain.states import Role
from bot.services.people import COUNTY_ROLES, InviteError, create_invite, find_county
from bot.services.project_views import counties
from bot.store.models import County
from bot.telegram.callbacks import CountyPick, InviteRole
from bot.texts import Texts
from handlers.common import RouterSpec, answer
from handlers.keyboards import button, chunked, county_keyboard, inline

router = RouterSpec("invite")
INVITE = {"access": "invite"}


def invite_link(username: str | None, code: str) -> str | None:
    return f"https://t.me/{username}?start={code}" if username else None


async def _create(
    event: Message | CallbackQuery, bot: Bot, session: AsyncSession, settings: Settings, texts: Texts, lang: str,
    clock: Clock, role: str, county: County | None, name: str = "",
) -> None:
    try:
        code, invite = await create_invite(session, role=role, county=county, name=name,
                                           ttl=dt.timedelta(days=settings.invite_ttl_days), now=clock())
    except InviteError as exc:
        await answer(event, texts(lang, "invite.failed", reason=exc.code, role=role, county=""))
        return
    me = await bot.me()
    await answer(event, texts(
        lang, "invite.created", link=invite_link(me.username, code), code=code, role=role,
        county=county.name if county else "", invitee=invite.name, expires=invite.expires_at.astimezone(settings.tz),
    ))


@router.message(Command("invite"), flags=INVITE)
async def invite(
    message: Message, command: CommandObject, bot: Bot, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    args = (command.args or "").split()
    if not args:
        buttons = [button(texts(lang, "buttons.role", code=role), InviteRole(role=role)) for role in Role]
        await answer(message, texts(lang, "invite.choose_role"), inline(chunked(buttons, 2)))
        return
    role, rest = args[0], args[1:]
    county = None
    if role in COUNTY_ROLES and rest:
        county = await find_county(session, rest[0])
        if county is None:
            await answer(message, texts(lang, "invite.failed", reason="unknown_county", role=role, county=rest[0]))
            return
        rest = rest[1:]
    await _create(message, bot, session, settings, texts, lang, clock, role, county, " ".join(rest))


@router.callback_query(InviteRole.filter(F.role.in_(tuple(Role))), flags=INVITE)
async def role_chosen(
    query: CallbackQuery, callback_data: InviteRole, bot: Bot, session: AsyncSession, settings: Settings,
    texts: Texts, lang: str, clock: Clock,
) -> None:
    if callback_data.role in COUNTY_ROLES:
        await answer(query, texts(lang, "invite.choose_county", role=callback_data.role),
                     county_keyboard(texts, lang, await counties(session), "invite", callback_data.role))
        return
    await _create(query, bot, session, settings, texts, lang, clock, callback_data.role, None)


@router.callback_query(CountyPick.filter(F.purpose == "invite"), flags=INVITE)
async def county_chosen(
    query: CallbackQuery, callback_data: CountyPick, bot: Bot, session: AsyncSession, settings: Settings,
    texts: Texts, lang: str, clock: Clock,
) -> None:
    county = await session.get(County, callback_data.county_id)
    if county is None or callback_data.role not in COUNTY_ROLES:
        await answer(query, texts(lang, "help.stale_button"))
        return
    await _create(query, bot, session, settings, texts, lang, clock, callback_data.role, county)
