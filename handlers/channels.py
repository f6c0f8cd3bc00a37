"""/channels for administrators: the group robots and mailboxes that get digests and alerts, with
their last delivery and last error (README "Channels"; adding and removing is on the command line)."""

from __future__ import annotations

from aiogram.filters import Command
from aiogram.types import Message

from bot.channels.compose import listing_rows
from bot.channels.store import list_channels
from handlers.common import RouterSpec, answer
from handlers.context import Ctx

router = RouterSpec("channels")


@router.message(Command("channels"), flags={"access": "channels"})
async def channels(message: Message, ctx: Ctx) -> None:
    rows = listing_rows(await list_channels(ctx.session), ctx.settings.tz)
    await answer(message, ctx.t("channels.listing", rows=rows))
