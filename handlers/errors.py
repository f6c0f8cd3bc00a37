"""The last line: any exception is logged with its traceback and the person gets a polite answer,
never silence. When the database cannot be reached, they are asked to resend in a few minutes:
nothing they sent was saved, and they should know it.

A button press is answered once: Telegram refuses a second answerCallbackQuery. `CallbackAnswerOnce`
(aiogram's CallbackAnswerMiddleware, which answers before the handler runs) notes the query it answered
for this update's task, and the error handler answers only a query that failed before that.

Unlike the other handlers it takes no `ctx`: an update can fail before the context exists (the database
down while finding who writes). It gets the texts and, when the person is known by then, their `lang`."""

from __future__ import annotations

import logging
from contextlib import suppress
from contextvars import ContextVar
from typing import TYPE_CHECKING

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.texts import Texts
from handlers.common import RouterSpec, lang_for

if TYPE_CHECKING:
    from aiogram.methods import AnswerCallbackQuery
    from aiogram.types import CallbackQuery
    from aiogram.utils.callback_answer import CallbackAnswer

log = logging.getLogger(__name__)
router = RouterSpec("errors")
ASYNCPG_CONNECTION_ERRORS = frozenset(
    {"CannotConnectNowError", "ConnectionDoesNotExistError", "TooManyConnectionsError", "ConnectionFailureError",
     "InterfaceError", "InternalClientError"}
)


# The id of the callback query answered while handling the current update. A context variable: the
# middleware sets it deep inside the handling of an update and the error handler, outside, reads it in
# the same task (aiogram hands each middleware level a copy of the data, so the data cannot carry it).
_answered_query: ContextVar[str | None] = ContextVar("answered_callback_query", default=None)


class CallbackAnswerOnce(CallbackAnswerMiddleware):
    """aiogram's CallbackAnswerMiddleware, remembering which query it answered."""

    def answer(self, event: CallbackQuery, callback_answer: CallbackAnswer) -> AnswerCallbackQuery:
        _answered_query.set(event.id)
        return super().answer(event, callback_answer)


def database_unavailable(exc: BaseException) -> bool:
    """Connection trouble (server down, pool exhausted, SQLite locked) rather than a bug."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # asyncpg and the socket layer raise these before SQLAlchemy can wrap them (connecting a new pool)
    if isinstance(exc, ConnectionError | TimeoutError) or type(exc) is OSError:
        return True
    return type(exc).__module__.startswith("asyncpg") and type(exc).__name__ in ASYNCPG_CONNECTION_ERRORS


@router.error()
async def on_error(event: ErrorEvent, texts: Texts, lang: str | None = None) -> None:
    update = event.update
    bot = update.bot
    assert bot is not None
    log.error("update %s failed: %r", update.update_id, event.exception, exc_info=event.exception)
    chat_id = None
    user = None
    if update.message is not None:
        chat_id, user = update.message.chat.id, update.message.from_user
    elif update.callback_query is not None:
        query = update.callback_query
        user = query.from_user
        chat_id = query.message.chat.id if query.message else user.id
        if _answered_query.get() != query.id:  # it failed before the press was answered
            with suppress(TelegramAPIError):
                await query.answer()
    if chat_id is None:
        return
    lang = lang or lang_for(user.language_code if user else None, texts.default_language)
    name = "help.db_unavailable" if database_unavailable(event.exception) else "help.error"
    with suppress(TelegramAPIError):
        await bot.send_message(chat_id, texts(lang, name))
