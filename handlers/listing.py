"""/list — one county one list (一县一清单): status, progress, light and this month's update, paged.
Leaders and administrators choose the county first."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.domain.access import is_city_wide
from bot.domain.lights import LightRules
from bot.services.project_views import counties, county_list
from bot.telegram.callbacks import CountyPick, ListPage, ProjectAction
from handlers.common import RouterSpec, answer, edit_or_send
from handlers.context import Ctx
from handlers.keyboards import MenuButton, button, county_keyboard, inline, pager

router = RouterSpec("listing")
SEE = {"access": "see"}
PAGE_SIZE = 10


async def _page(ctx: Ctx, county_id: int, page: int) -> tuple[str, InlineKeyboardMarkup]:
    listing = await county_list(ctx.session, county_id, page=page, size=PAGE_SIZE, now=ctx.now(), tz=ctx.settings.tz,
                                rules=LightRules.from_settings(ctx.settings))
    text = ctx.t("listing.page", listing=listing)
    buttons = [[button(ctx.t("buttons.list_project", row=row), ProjectAction(action="card", project_id=row.id))]
               for row in listing.rows]
    buttons.append(pager(ctx.t, listing.page, listing.pages, lambda p: ListPage(county_id=county_id, page=p)))
    return text, inline(buttons)


@router.message(Command("list"), flags=SEE)
@router.message(MenuButton("menu_list"), flags=SEE)
async def list_projects(message: Message, ctx: Ctx) -> None:
    person = ctx.bound
    if is_city_wide(person.role) or person.county_id is None:
        await answer(message, ctx.t("listing.choose_county"),
                     county_keyboard(ctx.t, await counties(ctx.session), "list"))
        return
    await answer(message, *await _page(ctx, person.county_id, 0))


@router.callback_query(CountyPick.filter(F.purpose == "list"), flags=SEE)
async def county_chosen(query: CallbackQuery, callback_data: CountyPick, ctx: Ctx) -> None:
    await answer(query, *await _page(ctx, callback_data.county_id, 0))


@router.callback_query(ListPage.filter(), flags=SEE)
async def turn_page(query: CallbackQuery, callback_data: ListPage, ctx: Ctx) -> None:
    await edit_or_send(query, *await _page(ctx, callback_data.county_id, callback_data.page))
