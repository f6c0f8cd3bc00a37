"""/project CODE or a tap on a list entry: the card (一工程一档案), the timeline page by page, and the
full dossier as a document."""

from __future__ import annotations

import re

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.clock import Clock
from bot.domain.lights import LightRules
from bot.services.project_views import page_of, project_card, timeline
from bot.store.models import Person, Project
from bot.telegram.callbacks import OldProjectButton, ProjectAction
from bot.texts import Texts
from handlers.cards import send_card
from handlers.common import RouterSpec, answer, chat_id_of, edit_or_send
from handlers.keyboards import inline, pager

router = RouterSpec("project")
SEE = {"access": "see"}
TIMELINE_PAGE = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@router.message(Command("project"), flags={**SEE, "project_from": "command"})
async def project_command(
    message: Message, command: CommandObject, person: Person, session: AsyncSession, settings: Settings,
    texts: Texts, lang: str, clock: Clock, project: Project | None = None,
) -> None:
    if project is None:  # no code given
        await answer(message, texts(lang, "access.ask_code"))
        return
    await send_card(message, project, person, session, settings, texts, lang, clock)


@router.callback_query(ProjectAction.filter(F.action == "card"), flags=SEE)
@router.callback_query(OldProjectButton.filter(), flags=SEE)
async def card(
    query: CallbackQuery, project: Project, person: Person, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    await send_card(query, project, person, session, settings, texts, lang, clock)


async def _timeline_page(
    project: Project, page: int, session: AsyncSession, settings: Settings, texts: Texts, lang: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    entries = await timeline(session, project, tz=settings.tz)
    page, pages = page_of(len(entries), page, TIMELINE_PAGE)
    shown = entries[page * TIMELINE_PAGE : (page + 1) * TIMELINE_PAGE]
    text = texts(lang, "project.timeline", project=project, entries=shown, page=page, pages=pages,
                 total=len(entries))
    nav = pager(texts, lang, page, pages, lambda p: ProjectAction(action="timeline", project_id=project.id, page=p))
    return text, inline([nav]) if nav else None


@router.callback_query(ProjectAction.filter(F.action == "dossier"), flags=SEE)
async def dossier(
    query: CallbackQuery, project: Project, session: AsyncSession, settings: Settings, texts: Texts, lang: str
) -> None:
    await answer(query, *await _timeline_page(project, 0, session, settings, texts, lang))


@router.callback_query(ProjectAction.filter(F.action == "timeline"), flags=SEE)
async def timeline_page(
    query: CallbackQuery, callback_data: ProjectAction, project: Project, session: AsyncSession, settings: Settings,
    texts: Texts, lang: str,
) -> None:
    await edit_or_send(query, *await _timeline_page(project, callback_data.page, session, settings, texts, lang))


@router.callback_query(ProjectAction.filter(F.action == "file"), flags=SEE)
async def dossier_file(
    query: CallbackQuery, project: Project, bot: Bot, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    now = clock()
    card = await project_card(session, project, now=now, tz=settings.tz, rules=LightRules.from_settings(settings))
    entries = await timeline(session, project, tz=settings.tz)
    document = texts(lang, "dossier_file.document", card=card, entries=entries, generated=now.astimezone(settings.tz))
    name = f"{_UNSAFE.sub('_', project.code)}-dossier.html"
    await bot.send_document(
        chat_id_of(query), BufferedInputFile(document.encode("utf-8"), filename=name),
        caption=texts(lang, "project.file_caption", project=project, entries=len(entries)),
    )
