"""The catch-alls, last in the order: whatever no feature understood gets a short, useful answer."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message

from handlers.common import RouterSpec, answer
from handlers.context import Ctx

router = RouterSpec("fallback")
UNSUPPORTED = ("sticker", "voice", "video", "video_note", "animation", "audio", "location", "venue", "contact",
               "poll", "dice", "game", "story")


@router.message(F.document)
async def document(message: Message, ctx: Ctx) -> None:
    await answer(message, ctx.t("help.document" if ctx.person else "start.unbound"))


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message, ctx: Ctx) -> None:
    command = (message.text or "").split()[0][:40]
    await answer(message, ctx.t("help.unknown_command", command=command) if ctx.person else ctx.t("start.unbound"))


@router.message()
async def anything_else(message: Message, ctx: Ctx) -> None:
    if ctx.person is None:
        await answer(message, ctx.t("start.unbound"))
        return
    kind = next((k for k in UNSUPPORTED if getattr(message, k, None) is not None), None)
    if kind is not None:
        await answer(message, ctx.t("help.unsupported", kind=kind))
        return
    await answer(message, ctx.t("help.short"))


@router.callback_query()
async def stale_button(query: CallbackQuery, ctx: Ctx) -> None:
    await answer(query, ctx.t("help.stale_button" if ctx.person else "start.unbound"))
