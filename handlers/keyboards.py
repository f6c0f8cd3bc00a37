"""Keyboards the routers share. Labels come from templates/<lang>/buttons.txt (plain text: Telegram
does not parse HTML in buttons); every button carries a CallbackData from bot/telegram/callbacks.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from bot.domain.access import can
from bot.domain.states import Role
from bot.store.models import County, Person, Project
from bot.telegram.callbacks import CountyPick, ProjectAction, QuickAction, ReportStep
from bot.texts import LANGUAGES, Texts, render

Rows = list[list[InlineKeyboardButton]]


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def inline(rows: Rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def chunked(buttons: Sequence[InlineKeyboardButton], width: int) -> Rows:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


MENU_BUTTONS = ("menu_report", "menu_list", "menu_nochange", "menu_web", "menu_help")


def main_menu(texts: Texts, lang: str, person: Person) -> ReplyKeyboardMarkup:
    """The keyboard under the input field: the everyday actions of this person's role."""
    reporter = can(person.role, person.county_id, "report", person.county_id)
    first = [texts(lang, "buttons.menu_report"), texts(lang, "buttons.menu_list")] if reporter else [
        texts(lang, "buttons.menu_list")]
    second = [texts(lang, "buttons.menu_nochange"), texts(lang, "buttons.menu_help")] if reporter else [
        texts(lang, "buttons.menu_help")]
    if person.role in (Role.ADMIN, Role.LEADER, Role.COUNTY_LEADER):  # readers of the cockpit (README "Cockpit")
        second.insert(0, texts(lang, "buttons.menu_web"))
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=t) for t in first], [KeyboardButton(text=t) for t in second]],
        resize_keyboard=True,
        is_persistent=True,
    )


class MenuButton(Filter):
    """The text of one main-menu button, in any language (people switch languages)."""

    def __init__(self, name: str) -> None:
        self.labels = frozenset(render(lang, f"buttons.{name}") for lang in LANGUAGES)

    async def __call__(self, message: Message) -> bool:
        return message.text is not None and message.text.strip() in self.labels


def card_keyboard(
    texts: Texts, lang: str, person: Person, project: Project, *, undo: bool = False
) -> InlineKeyboardMarkup:
    rows: Rows = [[
        button(texts(lang, "buttons.card_timeline"), ProjectAction(action="dossier", code=project.code)),
        button(texts(lang, "buttons.card_file"), ProjectAction(action="file", code=project.code)),
    ]]
    if can(person.role, person.county_id, "report", project.county_id):
        rows.append([
            button(texts(lang, "buttons.card_report"), ProjectAction(action="report", code=project.code)),
            button(texts(lang, "buttons.card_nochange"), ProjectAction(action="nochange", code=project.code)),
        ])
    if undo:
        rows.append([button(texts(lang, "buttons.undo"), QuickAction(action="undo", code=project.code))])
    return inline(rows)


def county_keyboard(
    texts: Texts, lang: str, counties: Iterable[County], purpose: str, role: str = ""
) -> InlineKeyboardMarkup:
    buttons = [
        button(texts(lang, "buttons.county", county=c.name), CountyPick(purpose=purpose, county_id=c.id, role=role))
        for c in counties
    ]
    return inline(chunked(buttons, 3))


def pager(
    texts: Texts, lang: str, page: int, pages: int, make: Callable[[int], CallbackData]
) -> list[InlineKeyboardButton]:
    """‹ n/m › buttons; `make(page)` builds the CallbackData of a page."""
    if pages <= 1:
        return []
    row = []
    if page > 0:
        row.append(button(texts(lang, "buttons.prev"), make(page - 1)))
    if page < pages - 1:
        row.append(button(texts(lang, "buttons.next", page=page + 2, pages=pages), make(page + 1)))
    return row


def cancel_row(texts: Texts, lang: str) -> list[InlineKeyboardButton]:
    return [button(texts(lang, "buttons.cancel"), ReportStep(step="cancel"))]
