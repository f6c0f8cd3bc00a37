"""The last line: any exception is logged with its traceback and the person gets a polite answer,
never silence. When the database cannot be reached, they are asked to resend in a few minutes:
nothing they sent was saved, and they should know it."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.texts import Texts
from handlers.common import RouterSpec, lang_for

log = logging.getLogger(__name__)
router = RouterSpec("errors")
ASYNCPG_CONNECTION_ERRORS = frozenset(
    {"CannotConnectNowError", "ConnectionDoesNotExistError", "TooManyConnectionsError", "ConnectionFailureError",
     "InterfaceError", "InternalClientError"}
)


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
async def on_error(event: ErrorEvent, bot: Bot, texts: Texts, lang: str | None = None) -> None:
    update = event.update
    log.error("update %s failed: %r", update.update_id, event.exception, exc_info=event.exception)
    chat_id = None
    user = None
    if update.message is not None:
        chat_id, user = update.message.chat.id, update.message.from_user
    elif update.callback_query is not None:
        query = update.callback_query
        user = query.from_user
        chat_id = query.message.chat.id if query.message else user.id
        with suppress(TelegramAPIError):
            await query.answer()
    if chat_id is None:
        return
    lang = lang or lang_for(user.language_code if user else None, texts.default_language)
    name = "help.db_unavailable" if database_unavailable(event.exception) else "help.error"
    with suppress(TelegramAPIError):
        await bot.send_message(chat_id, texts(lang, name))
