"""Small helpers the routers share: the user's language, answering an event, and RouterSpec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup

from bot.telegram.split import split_html
from bot.texts import LANGUAGES

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup
H = TypeVar("H", bound=Callable[..., Any])

def lang_for(language_code: str | None, default: str) -> str:
    """The language to speak to someone not yet bound (or before we know them): their client's."""
    code = (language_code or "").lower()
    for lang in LANGUAGES:
        if code.startswith(lang):
            return lang
    return default


def chat_id_of(event: Message | CallbackQuery) -> int:
    if isinstance(event, CallbackQuery):
        return event.message.chat.id if event.message else event.from_user.id
    return event.chat.id


async def answer(event: Message | CallbackQuery, text: str, markup: Markup | None = None) -> Message:
    """Send `text` (Telegram HTML) to the chat the event came from; the markup goes with the last part.

    Callback queries are acknowledged by aiogram's CallbackAnswerMiddleware, so this only writes."""
    bot = event.bot
    assert bot is not None
    chat_id = chat_id_of(event)
    parts = split_html(text) or [text]
    for part in parts[:-1]:
        await bot.send_message(chat_id, part)
    return await bot.send_message(chat_id, parts[-1], reply_markup=markup)


def pressed_message(event: CallbackQuery) -> Message | None:
    """The bot message whose button was pressed, when it can still be edited."""
    return event.message if isinstance(event.message, Message) else None


async def edit_or_send(event: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Turn the pressed message into `text` (a page of a list, a toggled choice); a new message if it
    cannot be edited. Pressing the same button twice changes nothing, which Telegram reports as an error."""
    message = pressed_message(event)
    if message is None or len(split_html(text)) > 1:
        await answer(event, text, markup)
        return
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "not modified" not in str(exc):
            raise


class RouterSpec:
    """A feature's handlers, declared with aiogram's decorator style, built into a fresh Router for
    each Dispatcher (an aiogram Router can belong to one parent only; tests build many apps)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[tuple[str, tuple[Any, ...], dict[str, Any] | None, Callable[..., Any]]] = []

    def _register(self, observer: str, filters: tuple[Any, ...], flags: dict[str, Any] | None) -> Callable[[H], H]:
        def remember(callback: H) -> H:
            self._handlers.append((observer, filters, flags, callback))
            return callback

        return remember

    def message(self, *filters: Any, flags: dict[str, Any] | None = None) -> Callable[[H], H]:
        return self._register("message", filters, flags)

    def callback_query(self, *filters: Any, flags: dict[str, Any] | None = None) -> Callable[[H], H]:
        return self._register("callback_query", filters, flags)

    def error(self, *filters: Any) -> Callable[[H], H]:
        return self._register("error", filters, None)

    def build(self) -> Router:
        router = Router(name=self.name)
        for observer, filters, flags, callback in self._handlers:
            router.observers[observer].register(callback, *filters, flags=flags)
        return router
