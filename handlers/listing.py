"""/list — one county one list (一县一清单): status, progress, light and this month's update, paged.
Leaders and administrators choose the county first."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.access import is_city_wide
from bot.domain.clock import Clock
from bot.domain.lights import LightRules
from bot.services.project_views import counties, county_list
from bot.store.models import Person
from bot.telegram.callbacks import CountyPick, ListPage, ProjectAction
from bot.texts import Texts
from handlers.common import RouterSpec, answer, edit_or_send
from handlers.keyboards import MenuButton, button, county_keyboard, inline, pager

router = RouterSpec("listing")
SEE = {"access": "see"}
PAGE_SIZE = 10


async def _page(
    session: AsyncSession, county_id: int, page: int, settings: Settings, texts: Texts, lang: str, clock: Clock
) -> tuple[str, InlineKeyboardMarkup]:
    rules = LightRules.from_settings(settings)
    listing = await county_list(session, county_id, page=page, size=PAGE_SIZE, now=clock(), tz=settings.tz,
                                rules=rules)
    text = texts(lang, "listing.page", listing=listing)
    buttons = [[button(texts(lang, "buttons.list_project", row=row), ProjectAction(action="card", project_id=row.id))]
               for row in listing.rows]
    buttons.append(pager(texts, lang, listing.page, listing.pages, lambda p: ListPage(county_id=county_id, page=p)))
    return text, inline(buttons)


@router.message(Command("list"), flags=SEE)
@router.message(MenuButton("menu_list"), flags=SEE)
async def list_projects(
    message: Message, person: Person, session: AsyncSession, settings: Settings, texts: Texts, lang: str,
    clock: Clock,
) -> None:
    if is_city_wide(person.role) or person.county_id is None:
        await answer(message, texts(lang, "listing.choose_county"),
                     county_keyboard(texts, lang, await counties(session), "list"))
        return
    await answer(message, *await _page(session, person.county_id, 0, settings, texts, lang, clock))


@router.callback_query(CountyPick.filter(F.purpose == "list"), flags=SEE)
async def county_chosen(
    query: CallbackQuery, callback_data: CountyPick, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    await answer(query, *await _page(session, callback_data.county_id, 0, settings, texts, lang, clock))


@router.callback_query(ListPage.filter(), flags=SEE)
async def turn_page(
    query: CallbackQuery, callback_data: ListPage, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    await edit_or_send(query, *await _page(session, callback_data.county_id, callback_data.page, settings, texts,
                                           lang, clock))
