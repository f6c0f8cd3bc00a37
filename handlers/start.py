"""/start (with an invite code: binding), /help and /language."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.clock import Clock
from bot.services.people import RedeemFailure, ensure_admin, redeem, set_language
from bot.store.models import Person
from bot.telegram.callbacks import LanguagePick
from bot.texts import LANGUAGES, Texts
from handlers.common import RouterSpec, answer
from handlers.keyboards import MenuButton, button, inline, main_menu

router = RouterSpec("start")


@router.message(CommandStart(deep_link=True))
async def start_with_code(
    message: Message, command: CommandObject, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    user = message.from_user
    assert user is not None
    result = await redeem(session, (command.args or "")[:64], telegram_id=user.id, telegram_name=user.full_name,
                          language=lang, now=clock())
    if isinstance(result, RedeemFailure):
        await answer(message, texts(lang, "start.redeem_failed", reason=result.reason))
        return
    person = result
    if user.id in settings.admin_ids:
        person = await ensure_admin(session, telegram_id=user.id, telegram_name=user.full_name, language=lang)
    lang = person.language if person.language in LANGUAGES else lang
    await answer(message, texts(lang, "start.bound", person=person, county=person.county.name if person.county else ""),
                 main_menu(texts, lang, person))


@router.message(CommandStart())
async def start(message: Message, person: Person | None, texts: Texts, lang: str) -> None:
    if person is None:
        await answer(message, texts(lang, "start.unbound"))
        return
    await answer(message, texts(lang, "start.welcome", person=person,
                                county=person.county.name if person.county else ""),
                 main_menu(texts, lang, person))


@router.message(Command("help"))
@router.message(MenuButton("menu_help"))
async def help_(message: Message, person: Person | None, texts: Texts, lang: str, settings: Settings) -> None:
    if person is None:
        await answer(message, texts(lang, "start.unbound"))
        return
    await answer(message, texts(lang, "help.help", role=person.role, undo_minutes=settings.undo_minutes),
                 main_menu(texts, lang, person))


@router.message(Command("language"))
async def language(message: Message, person: Person | None, texts: Texts, lang: str) -> None:
    if person is None:
        await answer(message, texts(lang, "start.unbound"))
        return
    keyboard = inline([[button(texts(lang, f"buttons.lang_{code}"), LanguagePick(lang=code)) for code in LANGUAGES]])
    await answer(message, texts(lang, "language.choose"), keyboard)


@router.callback_query(LanguagePick.filter(F.lang.in_(LANGUAGES)))
async def language_chosen(
    query: CallbackQuery, callback_data: LanguagePick, session: AsyncSession, person: Person | None, texts: Texts,
    lang: str,
) -> None:
    if person is None:
        await answer(query, texts(lang, "start.unbound"))
        return
    await set_language(session, person, callback_data.lang)
    await answer(query, texts(callback_data.lang, "language.switched"), main_menu(texts, callback_data.lang, person))
