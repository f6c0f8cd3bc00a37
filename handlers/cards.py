"""The project card, sent after /project, a tap on a list entry, and every saved report."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.clock import Clock
from bot.domain.lights import LightRules
from bot.services.project_views import project_card
from bot.store.models import Person, Project, Report
from bot.texts import Texts
from handlers.common import answer
from handlers.keyboards import card_keyboard


async def send_card(
    event: Message | CallbackQuery, project: Project, person: Person, session: AsyncSession, settings: Settings,
    texts: Texts, lang: str, clock: Clock, *, undo: bool = False, header: str = "", saved: Report | None = None,
) -> Message:
    """The card, after `header` (what just happened) when given; with an undo button after a report
    (`saved`, written by `person`)."""
    card = await project_card(session, project, now=clock(), tz=settings.tz, rules=LightRules.from_settings(settings),
                              saved=(saved, person.name) if saved is not None else None)
    text = texts(lang, "project.card", card=card)
    return await answer(event, f"{header}\n\n{text}" if header else text,
                        card_keyboard(texts, lang, person, project, undo=undo))
