"""One-message reports (`JZ-017 80% 管网铺设完成`, a photo with such a caption, a reply to a project
message), "no change this month", and /undo.

What is saved at once: a report the parser understood completely, that goes nowhere backwards and
reaches no milestone. Everything else is shown back as understood, with buttons to confirm or
correct: a milestone reached, progress going backwards, a completed project reopening, a photo
without words, a message without a project. Nothing is saved on a guess. Reports waiting for a
button live in the dialog data under "quick" (database or Redis; handlers/quick_pending.py), so they
survive a restart; the saved report carries the Telegram update id of the message, so confirming twice
saves once."""

from __future__ import annotations

from typing import Any

from aiogram import F
from aiogram.filters import Command, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.domain.periods import period_of
from bot.domain.report_parser import ParsedReport, ProblemCode, find_codes, parse_report
from bot.domain.states import ProjectStatus
from bot.services.project_views import county_projects, project_by_code, projects_by_codes
from bot.services.reports import (
    PhotoInput,
    ReportInput,
    ReportRejected,
    check,
    last_undoable,
    needs_confirmation,
    reported_project_ids,
    save_report,
    undo_report,
)
from bot.store.models import Photo, Project, Report
from bot.telegram.callbacks import ProjectAction, QuickAction
from handlers.cards import send_card
from handlers.common import RouterSpec, answer
from handlers.context import Ctx
from handlers.keyboards import MenuButton, Rows, button, chunked, inline
from handlers.photos import as_dict, forget_photos, from_dicts, keep_photo, largest, move_photos, too_big
from handlers.quick_pending import from_pending, hold, remember_album, take, to_pending

router = RouterSpec("quick_report")
REPORT = {"access": "report"}
MAX_PICK = 30  # project buttons offered when a message names none
UNSORTED = "_unsorted"  # photos whose project is not known yet


async def _bot_message_text(message: Message) -> str | None:
    """The text of the bot message this one replies to (a reminder, a card), if it is one."""
    replied, bot = message.reply_to_message, message.bot
    if replied is None or bot is None or replied.from_user is None or replied.from_user.id != (await bot.me()).id:
        return None
    return replied.text or replied.caption or ""


def _report_text(message: Message) -> str:
    return message.text or message.caption or ""


class WithCode(Filter):
    """A message about exactly one project: its code in the text, or else in the bot message it
    replies to. Injects `code` (then AccessMiddleware loads and authorizes the project).

    A code of another shape than `JZ-017` (Chinese, `A.B_1`: README "Project codes") cannot be told from
    words inside free text; written first, as the message's first word, it is looked up, and the rest is
    the report (`report_text`)."""

    async def __call__(self, message: Message, ctx: Ctx) -> bool | dict[str, Any]:
        text = _report_text(message)
        if text.startswith("/"):
            return False
        codes = find_codes(text)
        if len(codes) == 1:
            return {"code": codes[0]}
        if codes:
            return False
        words = text.split(maxsplit=1)
        if words and (project := await project_by_code(ctx.session, words[0])) is not None:
            # the project found goes along, so the access check does not look it up again
            return {"code": project.code, "project": project, "report_text": words[1] if len(words) > 1 else ""}
        replied = await _bot_message_text(message)
        replied_codes = find_codes(replied) if replied else []
        return {"code": replied_codes[0]} if len(replied_codes) == 1 else False


class WithoutCode(Filter):
    """A report that does not say which project (or names several): injects `candidates`, the codes
    to choose from (those of the replied message, or none: then the person's own projects)."""

    async def __call__(self, message: Message) -> bool | dict[str, Any]:
        text = _report_text(message)
        if text.startswith("/"):
            return False
        replied = await _bot_message_text(message)
        replied_codes = find_codes(replied) if replied else []
        if len(replied_codes) > 1 and not find_codes(text):
            return {"candidates": replied_codes}
        if find_codes(text):
            return False
        parsed = parse_report(text)
        looks_like_report = parsed.status is not None or parsed.progress is not None or parsed.no_change
        return {"candidates": []} if looks_like_report or message.photo else False


# --- the shared path -----------------------------------------------------------------------------

class Reply:
    """The event being answered, the handler's `ctx` and the person's dialog data (`state`), for the
    steps of a one-message report."""

    def __init__(self, event: Message | CallbackQuery, ctx: Ctx, state: FSMContext) -> None:
        self.event, self.ctx, self.state = event, ctx, state
        self.t = ctx.t

    async def say(self, name: str, rows: Rows | None = None, **context: Any) -> None:
        await answer(self.event, self.t(name, **context), inline(rows) if rows else None)

    async def card(self, project: Project, header: str, *, saved: Report | None = None) -> None:
        await send_card(self.event, project, self.ctx, undo=saved is not None, header=header, saved=saved)


def _understood(project: Project, data: ReportInput | ParsedReport, milestones: list[str]) -> dict[str, Any]:
    """What the bot took the message to say, for the templates."""
    note = data.note if isinstance(data, ParsedReport) else data.text
    photos = len(data.photos) if isinstance(data, ReportInput) else 0
    return {"code": project.code, "name": project.name, "status": data.status, "progress": data.progress,
            "no_change": data.no_change, "milestones": milestones, "note": note, "photos": photos,
            "old_status": project.status, "old_progress": project.progress}


async def process(r: Reply, project: Project, raw: str, photos: tuple[PhotoInput, ...], update_id: int,
                  group: str | None = None) -> None:
    """Understand `raw` as a report on `project`; save it, or ask what is unclear."""
    open_ms = [m for m in project.milestones if m.done is None]
    parsed = parse_report(raw, [m.name for m in open_ms])
    problems = [p for p in parsed.problems if p.code != ProblemCode.NO_CODE]
    understood = _understood(project, parsed, list(parsed.milestones))
    if photos and problems and all(p.code == ProblemCode.EMPTY for p in problems):
        # a photo with no words: evidence for this month, nothing changes in the ledger
        data = ReportInput(photos=photos, text=parsed.note)
        await _ask_confirm(r, project, data, update_id, ["photo_only"], group)
        return
    if problems:
        await _explain(r, project, parsed, problems, understood, photos, update_id)
        return
    ids = [m.id for m in open_ms if m.name in parsed.milestones]
    data = ReportInput(status=parsed.status, progress=parsed.progress, milestone_ids=tuple(ids), text=parsed.note,
                       no_change=parsed.no_change, photos=photos)
    if data.no_change and await _reported(r, project):
        period = period_of(r.ctx.now(), r.ctx.settings.tz)
        await r.card(project, r.t("quick.already_reported", code=project.code, period=period))
        return
    rejected = check(project, data)
    if rejected:
        await r.say("quick.rejected", _guided_rows(r, project), reason=rejected[0])
        return
    reasons = needs_confirmation(project, data) + (["milestones"] if ids else [])
    if reasons:
        await _ask_confirm(r, project, data, update_id, reasons, group)
        return
    await _save(r, project, data, update_id, group)


async def _reported(r: Reply, project: Project) -> bool:
    ctx = r.ctx
    return bool(await reported_project_ids(ctx.session, period_of(ctx.now(), ctx.settings.tz), [project.id]))


def _guided_rows(r: Reply, project: Project) -> Rows:
    return [[button(r.t("buttons.quick_guided"), ProjectAction(action="report", project_id=project.id))]]


async def _ask_confirm(r: Reply, project: Project, data: ReportInput, update_id: int, reasons: list[str],
                       group: str | None) -> None:
    token = await hold(r.state, {"code": project.code, "input": to_pending(data), "update_id": update_id})
    await remember_album(r.state, group, {"token": token})
    rows: Rows = [[button(r.t("buttons.save"), QuickAction(action="save", token=token, project_id=project.id)),
                   button(r.t("buttons.cancel"), QuickAction(action="cancel", token=token, project_id=project.id))]]
    names = {m.id: m.name for m in project.milestones}
    understood = _understood(project, data, [names[i] for i in data.milestone_ids if i in names])
    await r.say("quick.confirm", rows, u=understood, reasons=reasons)


async def _explain(r: Reply, project: Project, parsed: ParsedReport, problems: list[Any],
                   understood: dict[str, Any], photos: tuple[PhotoInput, ...], update_id: int) -> None:
    """Say what was understood and what is wrong; offer the obvious corrections as buttons."""
    rows: Rows = []
    for problem in problems:
        fix: tuple[str, ReportInput] | None = None
        value = problem.detail.get("value")
        if problem.code == ProblemCode.BARE_NUMBER and isinstance(value, int) and 0 <= value <= 100:
            fix = r.t("buttons.quick_as_percent", value=value), ReportInput(progress=value, photos=photos)
        elif problem.code == ProblemCode.BARE_COMPLETE_WORD and len(problems) == 1:
            fix = r.t("buttons.quick_mark_completed"), ReportInput(status=ProjectStatus.COMPLETED, text=parsed.note,
                                                                   photos=photos)
        if fix is not None and not check(project, fix[1]):
            token = await hold(r.state, {"code": project.code, "input": to_pending(fix[1]), "update_id": update_id})
            rows.append([button(fix[0], QuickAction(action="fix", token=token, project_id=project.id))])
    rows += _guided_rows(r, project)
    await r.say("quick.problems", rows, u=understood, problems=[{"code": p.code.value, **p.detail} for p in problems])


async def _save(r: Reply, project: Project, data: ReportInput, update_id: int, group: str | None = None) -> None:
    ctx = r.ctx
    try:
        report = await save_report(ctx.session, project, data, person_id=ctx.bound.id, now=ctx.now(),
                                   tz=ctx.settings.tz, update_id=update_id)
    except ReportRejected as exc:
        await r.say("quick.rejected", _guided_rows(r, project), reason=exc.code)
        return
    if report is None:
        await r.card(project, r.t("quick.duplicate"))
        return
    await remember_album(r.state, group, {"report_id": report.id, "code": project.code})
    name = "quick.no_change_saved" if data.no_change else "quick.saved"
    await r.card(project, r.t(name, code=project.code, period=report.period, photos=len(data.photos),
                              undo_minutes=ctx.settings.undo_minutes), saved=report)


async def _photos_of(message: Message, code: str, r: Reply) -> tuple[PhotoInput, ...] | None:
    """The message's photo kept for `code`; None (after saying why) when it is too big."""
    photo, settings = largest(message), r.ctx.settings
    if photo is None:
        return ()
    if too_big(photo, settings):
        await r.say("help.photo_too_big", max_mb=settings.max_photo_mb)
        return None
    assert message.bot is not None
    return (await keep_photo(message.bot, photo, settings, code, r.ctx.now()),)


# --- messages ------------------------------------------------------------------------------------

class KnownAlbum(Filter):
    """A further photo (no caption) of an album whose first photo carried a report: injects `album`."""

    async def __call__(self, message: Message, state: FSMContext) -> bool | dict[str, Any]:
        if not message.photo or message.caption or not message.media_group_id:
            return False
        album = ((await state.get_data()).get("albums") or {}).get(message.media_group_id)
        return {"album": album} if album else False


@router.message(KnownAlbum(), flags=REPORT)
async def album_photo(message: Message, album: dict[str, Any], ctx: Ctx, state: FSMContext) -> None:
    r = Reply(message, ctx, state)
    data = await state.get_data()
    item = (data.get("quick") or {}).get(album.get("token", ""))
    code = album.get("code") or (item or {}).get("code") or UNSORTED
    photos = await _photos_of(message, code, r)
    if not photos:
        return
    if "report_id" in album:  # the report is saved: the photo joins it as evidence
        ctx.session.add(Photo(report_id=album["report_id"], file_id=photos[0].file_id,
                              file_unique_id=photos[0].file_unique_id, path=photos[0].path))
        await ctx.session.commit()
        await r.say("quick.photo_added", code=code)
        return
    if item is None:
        await r.say("quick.expired")
        return
    target = item["input"]["photos"] if "input" in item else item.setdefault("photos", [])
    target.append(as_dict(photos[0]))
    await state.set_data(data)
    await r.say("quick.photo_added_pending", count=len(target))


@router.message(F.text | F.photo, WithCode(), flags=REPORT)
async def report_with_code(
    message: Message, project: Project, ctx: Ctx, state: FSMContext, report_text: str | None = None
) -> None:
    r = Reply(message, ctx, state)
    photos = await _photos_of(message, project.code, r)
    if photos is None:
        return
    text = _report_text(message) if report_text is None else report_text
    await process(r, project, text, photos, ctx.update_id, message.media_group_id)


@router.message(F.text | F.photo, WithoutCode(), flags=REPORT)
async def report_without_code(message: Message, candidates: list[str], ctx: Ctx, state: FSMContext) -> None:
    """Ask which project, with a button each; the report waits (its photo already kept)."""
    r = Reply(message, ctx, state)
    county_id = ctx.bound.county_id
    if candidates:
        projects = await projects_by_codes(ctx.session, candidates)
    else:
        projects = await county_projects(ctx.session, county_id) if county_id is not None else []
    projects = projects[:MAX_PICK]
    codes = [p.code for p in projects]
    photos = await _photos_of(message, UNSORTED, r)
    if photos is None:
        return
    if not codes:
        await r.say("quick.which_project", codes=[])
        return
    token = await hold(state, {"raw": _report_text(message), "photos": [as_dict(p) for p in photos],
                                "update_id": ctx.update_id, "group": message.media_group_id})
    await remember_album(state, message.media_group_id, {"token": token})
    rows = chunked([button(p.code, QuickAction(action="pick", token=token, project_id=p.id)) for p in projects], 3)
    await r.say("quick.which_project", rows, codes=codes)


@router.message(MenuButton("menu_nochange"), flags=REPORT)
async def no_change_menu(message: Message, ctx: Ctx) -> None:
    """本月无变化 from the menu: the projects still without this month's update, a button each."""
    county_id = ctx.bound.county_id
    if county_id is None:
        await answer(message, ctx.t("quick.which_project", codes=[]))
        return
    projects = [p for p in await county_projects(ctx.session, county_id) if p.status != ProjectStatus.COMPLETED]
    done = await reported_project_ids(ctx.session, period_of(ctx.now(), ctx.settings.tz), [p.id for p in projects])
    missing = [p for p in projects if p.id not in done][:MAX_PICK]
    rows = [[button(ctx.t("buttons.project", code=p.code, title=p.name),
                    ProjectAction(action="nochange", project_id=p.id))] for p in missing]
    await answer(message, ctx.t("quick.no_change_choose", count=len(missing)), inline(rows) if rows else None)


# --- buttons -------------------------------------------------------------------------------------

@router.callback_query(ProjectAction.filter(F.action == "nochange"), flags=REPORT)
async def no_change(query: CallbackQuery, project: Project, ctx: Ctx, state: FSMContext) -> None:
    r = Reply(query, ctx, state)
    if await _reported(r, project):
        await r.card(project, r.t("quick.already_reported", code=project.code,
                                  period=period_of(ctx.now(), ctx.settings.tz)))
        return
    await _save(r, project, ReportInput(no_change=True), ctx.update_id)


@router.callback_query(QuickAction.filter(F.action.in_({"save", "fix"})), flags=REPORT)
async def confirmed(
    query: CallbackQuery, callback_data: QuickAction, project: Project, ctx: Ctx, state: FSMContext
) -> None:
    r = Reply(query, ctx, state)
    item = await take(state, callback_data.token)
    if item is None or item.get("code") != project.code:
        await r.say("quick.expired")
        return
    data = from_pending(item["input"])
    reasons = needs_confirmation(project, data)
    if callback_data.action == "fix" and reasons:  # a correction that goes backwards: one more look
        await _ask_confirm(r, project, data, item["update_id"], reasons, None)
        return
    await _save(r, project, data, item["update_id"])


@router.callback_query(QuickAction.filter(F.action == "pick"), flags=REPORT)
async def picked(query: CallbackQuery, callback_data: QuickAction, project: Project, ctx: Ctx,
                 state: FSMContext) -> None:
    r = Reply(query, ctx, state)
    item = await take(state, callback_data.token)
    if item is None or "raw" not in item:
        await r.say("quick.expired")
        return
    photos = move_photos(ctx.settings, from_dicts(item.get("photos") or []), project.code)
    await process(r, project, item["raw"], photos, item["update_id"], item.get("group"))


@router.callback_query(QuickAction.filter(F.action == "cancel"))
async def cancelled(query: CallbackQuery, callback_data: QuickAction, ctx: Ctx, state: FSMContext) -> None:
    item = await take(state, callback_data.token)
    if item is not None:
        forget_photos(ctx.settings, (item.get("input") or item).get("photos") or [])
    await answer(query, ctx.t("quick.cancelled"))


# --- undo ----------------------------------------------------------------------------------------

@router.message(Command("undo"), flags=REPORT)
@router.callback_query(QuickAction.filter(F.action == "undo"), flags=REPORT)
async def undo(event: Message | CallbackQuery, ctx: Ctx, state: FSMContext, project: Project | None = None) -> None:
    r = Reply(event, ctx, state)
    person, minutes = ctx.bound, ctx.settings.undo_minutes
    report = await last_undoable(ctx.session, person.id, now=ctx.now(), window_minutes=minutes)
    if report is None or (project is not None and report.project_id != project.id):
        await r.say("quick.nothing_to_undo", minutes=minutes)
        return
    target = project or await ctx.session.get_one(Project, report.project_id)
    try:
        await undo_report(ctx.session, report, person_id=person.id, now=ctx.now(), tz=ctx.settings.tz)
    except ReportRejected:
        await r.say("quick.undo_superseded", code=target.code)
        return
    await r.card(target, r.t("quick.undone", code=target.code, kind=report.kind, period=report.period))
