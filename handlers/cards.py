"""The project card, sent after /project, a tap on a list entry, and every saved report."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message

from bot.domain.lights import LightRules
from bot.services.project_views import project_card
from bot.store.models import Project, Report
from handlers.common import answer
from handlers.context import Ctx
from handlers.keyboards import card_keyboard


async def send_card(
    event: Message | CallbackQuery, project: Project, ctx: Ctx, *, undo: bool = False, header: str = "",
    saved: Report | None = None,
) -> Message:
    """The card, after `header` (what just happened) when given; with an undo button after a report
    (`saved`, written by the person of `ctx`)."""
    person = ctx.bound
    card = await project_card(ctx.session, project, now=ctx.now(), tz=ctx.settings.tz,
                              rules=LightRules.from_settings(ctx.settings),
                              saved=(saved, person.name) if saved is not None else None)
    text = ctx.t("project.card", card=card)
    return await answer(event, f"{header}\n\n{text}" if header else text,
                        card_keyboard(ctx.t, person, project, undo=undo))
