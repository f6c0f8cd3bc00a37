"""Keyboards the routers share. Labels come from templates/<lang>/buttons.txt (plain text: Telegram
does not parse HTML in buttons); every button carries a CallbackData from bot/telegram/callbacks.py.
The helpers take `t`, a handler's `ctx.t` (texts in the person's language)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

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
from bot.texts import LANGUAGES, render

Rows = list[list[InlineKeyboardButton]]


class Say(Protocol):
    """`ctx.t`: a text by name, in the person's language."""

    def __call__(self, name: str, /, **values: Any) -> str: ...


def button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def inline(rows: Rows) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])


def chunked(buttons: Sequence[InlineKeyboardButton], width: int) -> Rows:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


MENU_BUTTONS = ("menu_report", "menu_list", "menu_nochange", "menu_web", "menu_help")


def main_menu(t: Say, person: Person) -> ReplyKeyboardMarkup:
    """The keyboard under the input field: the everyday actions of this person's role."""
    reporter = can(person.role, person.county_id, "report", person.county_id)
    first = [t("buttons.menu_report"), t("buttons.menu_list")] if reporter else [
        t("buttons.menu_list")]
    second = [t("buttons.menu_nochange"), t("buttons.menu_help")] if reporter else [
        t("buttons.menu_help")]
    if person.role in (Role.ADMIN, Role.LEADER, Role.COUNTY_LEADER):  # readers of the cockpit (README "Cockpit")
        second.insert(0, t("buttons.menu_web"))
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


def card_keyboard(t: Say, person: Person, project: Project, *, undo: bool = False) -> InlineKeyboardMarkup:
    rows: Rows = [[
        button(t("buttons.card_timeline"), ProjectAction(action="dossier", project_id=project.id)),
        button(t("buttons.card_file"), ProjectAction(action="file", project_id=project.id)),
    ]]
    if can(person.role, person.county_id, "report", project.county_id):
        rows.append([
            button(t("buttons.card_report"), ProjectAction(action="report", project_id=project.id)),
            button(t("buttons.card_nochange"), ProjectAction(action="nochange", project_id=project.id)),
        ])
    if undo:
        rows.append([button(t("buttons.undo"), QuickAction(action="undo", project_id=project.id))])
    return inline(rows)


def county_keyboard(t: Say, counties: Iterable[County], purpose: str, role: str = "") -> InlineKeyboardMarkup:
    buttons = [
        button(t("buttons.county", county=c.name), CountyPick(purpose=purpose, county_id=c.id, role=role))
        for c in counties
    ]
    return inline(chunked(buttons, 3))


def pager(t: Say, page: int, pages: int, make: Callable[[int], CallbackData]) -> list[InlineKeyboardButton]:
    """‹ n/m › buttons; `make(page)` builds the CallbackData of a page."""
    if pages <= 1:
        return []
    row = []
    if page > 0:
        row.append(button(t("buttons.prev"), make(page - 1)))
    if page < pages - 1:
        row.append(button(t("buttons.next", page=page + 2, pages=pages), make(page + 1)))
    return row


def cancel_row(t: Say) -> list[InlineKeyboardButton]:
    return [button(t("buttons.cancel"), ReportStep(step="cancel"))]
