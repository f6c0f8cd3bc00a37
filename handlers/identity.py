"""Who is writing: injects `person` (the bound Person, or None) and `lang` (theirs, else their client's);
and, read in the same query, whether the update was handled already (for DedupeMiddleware, next).

ADMIN_IDS become administrators on first contact; someone the sender marked unreachable (they had
blocked the bot) is reachable again as soon as they write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.states import Role
from bot.services.people import ensure_admin, mark_reachable, person_by_telegram_id, writer_of_update
from bot.texts import LANGUAGES
from handlers.common import lang_for

UPDATE_HANDLED = "update_handled"  # True/False for DedupeMiddleware; absent or None: it asks itself


class IdentityMiddleware(BaseMiddleware):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        person = None
        if user is not None and not user.is_bot:
            if isinstance(event, Update):  # whether it was handled already comes with the same query
                person, data[UPDATE_HANDLED] = await writer_of_update(session, user.id, event.update_id)
            else:
                person = await person_by_telegram_id(session, user.id)
            client_lang = lang_for(user.language_code, self.settings.default_language)
            if user.id in self.settings.admin_ids and (person is None or person.role != Role.ADMIN):
                person = await ensure_admin(session, telegram_id=user.id, telegram_name=user.full_name,
                                            language=client_lang)
            elif person is not None and not person.reachable:
                await mark_reachable(session, person)
        data["person"] = person
        if person is not None and person.language in LANGUAGES:
            data["lang"] = person.language
        else:
            data["lang"] = lang_for(user.language_code if user else None, self.settings.default_language)
        return await handler(event, data)
