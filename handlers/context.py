"""What every handler gets in one parameter, `ctx`: the person writing, the update's database session,
the texts in their language, the clock and the settings (README "Layout": handlers stay thin)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.clock import Clock
from bot.store.models import Person
from bot.texts import Texts


@dataclass
class Ctx:
    person: Person | None  # None for someone not bound yet (only /start and the fallback see them)
    session: AsyncSession
    texts: Texts
    lang: str
    clock: Clock
    settings: Settings
    update_id: int = 0  # the Telegram update being handled: a saved report carries it (sent twice, saved once)

    @property
    def bound(self) -> Person:
        """The person, for handlers with an access flag: AccessMiddleware lets only bound people reach them."""
        assert self.person is not None, "an access-flagged handler reached by someone not bound"
        return self.person

    def speaking(self, lang: str) -> Ctx:
        """The same context in another language (the one a person just chose)."""
        return dataclasses.replace(self, lang=lang)

    def t(self, name: str, **values: Any) -> str:
        """A text in the person's language, e.g. `ctx.t("report.saved", code=...)`."""
        return self.texts(self.lang, name, **values)

    def now(self) -> dt.datetime:
        return self.clock()


class ContextMiddleware(BaseMiddleware):
    """Outer middleware on dp.update, last: builds `ctx` from what the session and identity middlewares
    put in the handler data."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["ctx"] = Ctx(person=data.get("person"), session=data["session"], texts=data["texts"],
                          lang=data["lang"], clock=data["clock"], settings=data["settings"],
                          update_id=event.update_id if isinstance(event, Update) else 0)
        return await handler(event, data)
