"""/project CODE or a tap on a list entry: the card (一工程一档案), the timeline page by page, and the
full dossier as a document."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from bot.domain.lights import LightRules
from bot.domain.project_code import file_safe
from bot.services.project_views import page_of, project_card, timeline
from bot.store.models import Project
from bot.telegram.callbacks import OldProjectButton, ProjectAction
from handlers.cards import send_card
from handlers.common import RouterSpec, answer, chat_id_of, edit_or_send
from handlers.context import Ctx
from handlers.keyboards import inline, pager

router = RouterSpec("project")
SEE = {"access": "see"}
TIMELINE_PAGE = 5


@router.message(Command("project"), flags={**SEE, "project_from": "command"})
async def project_command(message: Message, ctx: Ctx, project: Project | None = None) -> None:
    if project is None:  # no code given
        await answer(message, ctx.t("access.ask_code"))
        return
    await send_card(message, project, ctx)


@router.callback_query(ProjectAction.filter(F.action == "card"), flags=SEE)
@router.callback_query(OldProjectButton.filter(), flags=SEE)
async def card(query: CallbackQuery, project: Project, ctx: Ctx) -> None:
    await send_card(query, project, ctx)


async def _timeline_page(ctx: Ctx, project: Project, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    entries = await timeline(ctx.session, project, tz=ctx.settings.tz)
    page, pages = page_of(len(entries), page, TIMELINE_PAGE)
    shown = entries[page * TIMELINE_PAGE : (page + 1) * TIMELINE_PAGE]
    text = ctx.t("project.timeline", project=project, entries=shown, page=page, pages=pages, total=len(entries))
    nav = pager(ctx.t, page, pages, lambda p: ProjectAction(action="timeline", project_id=project.id, page=p))
    return text, inline([nav]) if nav else None


@router.callback_query(ProjectAction.filter(F.action == "dossier"), flags=SEE)
async def dossier(query: CallbackQuery, project: Project, ctx: Ctx) -> None:
    await answer(query, *await _timeline_page(ctx, project, 0))


@router.callback_query(ProjectAction.filter(F.action == "timeline"), flags=SEE)
async def timeline_page(query: CallbackQuery, callback_data: ProjectAction, project: Project, ctx: Ctx) -> None:
    await edit_or_send(query, *await _timeline_page(ctx, project, callback_data.page))


@router.callback_query(ProjectAction.filter(F.action == "file"), flags=SEE)
async def dossier_file(query: CallbackQuery, project: Project, ctx: Ctx) -> None:
    assert query.bot is not None
    now, tz = ctx.now(), ctx.settings.tz
    card = await project_card(ctx.session, project, now=now, tz=tz, rules=LightRules.from_settings(ctx.settings))
    entries = await timeline(ctx.session, project, tz=tz)
    document = ctx.t("dossier_file.document", card=card, entries=entries, generated=now.astimezone(tz))
    name = f"{file_safe(project.code)}-dossier.html"
    await query.bot.send_document(
        chat_id_of(query), BufferedInputFile(document.encode("utf-8"), filename=name),
        caption=ctx.t("project.file_caption", project=project, entries=len(entries)),
    )
