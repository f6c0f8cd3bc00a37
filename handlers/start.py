"""/start (with an invite code: binding), /help and /language."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.services.people import RedeemFailure, ensure_admin, redeem, set_language
from bot.telegram.callbacks import LanguagePick
from bot.texts import LANGUAGES
from handlers.common import RouterSpec, answer
from handlers.context import Ctx
from handlers.keyboards import MenuButton, button, inline, main_menu

router = RouterSpec("start")


@router.message(CommandStart(deep_link=True))
async def start_with_code(message: Message, command: CommandObject, ctx: Ctx) -> None:
    user = message.from_user
    assert user is not None
    result = await redeem(ctx.session, (command.args or "")[:64], telegram_id=user.id, telegram_name=user.full_name,
                          language=ctx.lang, now=ctx.now())
    if isinstance(result, RedeemFailure):
        await answer(message, ctx.t("start.redeem_failed", reason=result.reason))
        return
    person = result
    if user.id in ctx.settings.admin_ids:
        person = await ensure_admin(ctx.session, telegram_id=user.id, telegram_name=user.full_name, language=ctx.lang)
    told = ctx.speaking(person.language) if person.language in LANGUAGES else ctx
    await answer(message, told.t("start.bound", person=person, county=person.county.name if person.county else ""),
                 main_menu(told.t, person))


@router.message(CommandStart())
async def start(message: Message, ctx: Ctx) -> None:
    person = ctx.person
    if person is None:
        await answer(message, ctx.t("start.unbound"))
        return
    await answer(message, ctx.t("start.welcome", person=person, county=person.county.name if person.county else ""),
                 main_menu(ctx.t, person))


@router.message(Command("help"))
@router.message(MenuButton("menu_help"))
async def help_(message: Message, ctx: Ctx) -> None:
    if ctx.person is None:
        await answer(message, ctx.t("start.unbound"))
        return
    await answer(message, ctx.t("help.help", role=ctx.person.role, undo_minutes=ctx.settings.undo_minutes),
                 main_menu(ctx.t, ctx.person))


@router.message(Command("language"))
async def language(message: Message, ctx: Ctx) -> None:
    if ctx.person is None:
        await answer(message, ctx.t("start.unbound"))
        return
    keyboard = inline([[button(ctx.t(f"buttons.lang_{code}"), LanguagePick(lang=code)) for code in LANGUAGES]])
    await answer(message, ctx.t("language.choose"), keyboard)


@router.callback_query(LanguagePick.filter(F.lang.in_(LANGUAGES)))
async def language_chosen(query: CallbackQuery, callback_data: LanguagePick, ctx: Ctx) -> None:
    if ctx.person is None:
        await answer(query, ctx.t("start.unbound"))
        return
    await set_language(ctx.session, ctx.person, callback_data.lang)
    chosen = ctx.speaking(callback_data.lang)
    await answer(query, chosen.t("language.switched"), main_menu(chosen.t, ctx.person))
