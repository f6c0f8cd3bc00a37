"""The catch-alls, last in the order: whatever no feature understood gets a short, useful answer."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message

from bot.store.models import Person
from bot.texts import Texts
from handlers.common import RouterSpec, answer

router = RouterSpec("fallback")
UNSUPPORTED = ("sticker", "voice", "video", "video_note", "animation", "audio", "location", "venue", "contact",
               "poll", "dice", "game", "story")


@router.message(F.document)
async def document(message: Message, person: Person | None, texts: Texts, lang: str) -> None:
    await answer(message, texts(lang, "help.document" if person else "start.unbound"))


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message, person: Person | None, texts: Texts, lang: str) -> None:
    command = (message.text or "").split()[0][:40]
    await answer(message, texts(lang, "help.unknown_command", command=command) if person else
                 texts(lang, "start.unbound"))


@router.message()
async def anything_else(message: Message, person: Person | None, texts: Texts, lang: str) -> None:
    if person is None:
        await answer(message, texts(lang, "start.unbound"))
        return
    kind = next((k for k in UNSUPPORTED if getattr(message, k, None) is not None), None)
    if kind is not None:
        await answer(message, texts(lang, "help.unsupported", kind=kind))
        return
    await answer(message, texts(lang, "help.short"))


@router.callback_query()
async def stale_button(query: CallbackQuery, person: Person | None, texts: Texts, lang: str) -> None:
    await answer(query, texts(lang, "help.stale_button" if person else "start.unbound"))
