"""The guided report (更新进度): project → status → progress → milestones reached → investment →
problems → next steps → photos → summary → saved, answered with the updated card.

The dialog's answers live in the FSM data under "guided" (the database or Redis), so a restart
in the middle loses nothing. Steps that do not apply are skipped (no progress to ask for a project
reported completed or not started; no milestones when none is open). Going backwards or reopening
a completed project needs one more explicit confirmation before saving. The steps' order, keyboards
and the `step` decorator that loads the open dialog for each step are in handlers/guided_steps.py."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.domain.report_parser import parse_amount, parse_progress
from bot.domain.states import ProjectStatus
from bot.services.project_views import counties, county_projects, page_of
from bot.services.reports import ReportRejected, check, needs_confirmation, save_report
from bot.store.models import County, Project
from bot.telegram.callbacks import CountyPick, ProjectAction, ReportStep
from handlers.cards import send_card
from handlers.common import RouterSpec, answer, edit_or_send
from handlers.context import Ctx
from handlers.guided_steps import (
    Dialog,
    Guided,
    begin,
    load,
    open_milestones,
    report_input,
    step,
    store,
    summary,
)
from handlers.keyboards import MenuButton, Rows, button, cancel_row, county_keyboard, inline, pager
from handlers.photos import as_dict, forget_photos, keep_photo, largest, too_big

router = RouterSpec("guided_report")
REPORT = {"access": "report"}
DIALOG = {"access": "report", "project_from": "dialog"}
PROJECTS_PER_PAGE = 8
MAX_TEXT = 2000  # problems / next steps: a paragraph, not a document
MAX_PHOTOS = 10
TYPED = (F.text, ~F.text.startswith("/"))  # an answer typed, not a command


# --- starting ------------------------------------------------------------------------------------

async def _choose_project(
    event: Message | CallbackQuery, ctx: Ctx, county_id: int, page: int, *, edit: bool = False
) -> None:
    projects = await county_projects(ctx.session, county_id)
    if not projects:
        await answer(event, ctx.t("report.no_projects"))
        return
    page, pages = page_of(len(projects), page, PROJECTS_PER_PAGE)
    shown = projects[page * PROJECTS_PER_PAGE : (page + 1) * PROJECTS_PER_PAGE]
    rows: Rows = [[button(ctx.t("buttons.project", code=p.code, title=p.name),
                          ProjectAction(action="report", project_id=p.id))] for p in shown]
    rows.append(pager(ctx.t, page, pages, lambda n: ReportStep(step="ppage", value=f"{county_id}-{n}")))
    rows.append(cancel_row(ctx.t))
    county = await ctx.session.get_one(County, county_id)
    text = ctx.t("report.choose_project", county=county.name, page=page, pages=pages)
    if edit and isinstance(event, CallbackQuery):
        await edit_or_send(event, text, inline(rows))
    else:
        await answer(event, text, inline(rows))


@router.message(Command("report"), flags={**REPORT, "project_from": "command"})
@router.message(MenuButton("menu_report"), flags=REPORT)
async def start_report(message: Message, ctx: Ctx, state: FSMContext, project: Project | None = None) -> None:
    county_id = ctx.bound.county_id
    if project is not None:
        await begin(message, ctx, state, project)
    elif county_id is None:  # an administrator: any county
        await answer(message, ctx.t("report.choose_county"),
                     county_keyboard(ctx.t, await counties(ctx.session), "report"))
    else:
        await _choose_project(message, ctx, county_id, 0)


@router.callback_query(CountyPick.filter(F.purpose == "report"), flags=REPORT)
async def county_chosen(query: CallbackQuery, callback_data: CountyPick, ctx: Ctx) -> None:
    await _choose_project(query, ctx, callback_data.county_id, 0)


@router.callback_query(ReportStep.filter(F.step == "ppage"), flags=REPORT)
async def project_page(query: CallbackQuery, callback_data: ReportStep, ctx: Ctx) -> None:
    person = ctx.bound
    county, _, page = callback_data.value.partition("-")
    if not county.isdigit() or not page.isdigit():
        await answer(query, ctx.t("help.stale_button"))
        return
    if person.county_id is not None and int(county) != person.county_id:
        await answer(query, ctx.t("access.refused", action="report", role=person.role))
        return
    await _choose_project(query, ctx, int(county), int(page), edit=True)


@router.callback_query(ProjectAction.filter(F.action == "report"), flags=REPORT)
async def project_chosen(query: CallbackQuery, project: Project, ctx: Ctx, state: FSMContext) -> None:
    await begin(query, ctx, state, project)


# --- cancel, from any step -----------------------------------------------------------------------

@router.message(Command("cancel"))
@router.message(StateFilter(Guided), F.text.lower().in_({"取消", "cancel"}))
@router.callback_query(ReportStep.filter(F.step == "cancel"))
async def cancel(event: Message | CallbackQuery, ctx: Ctx, state: FSMContext) -> None:
    guided = await load(state)
    if not guided and await state.get_state() is None:
        await answer(event, ctx.t("report.nothing_to_cancel"))
        return
    forget_photos(ctx.settings, guided.get("photos") or [])
    await store(state, None)
    await state.set_state(None)
    await answer(event, ctx.t("report.cancelled"))


# --- the steps: each gets the open dialog from `step` --------------------------------------------

@router.callback_query(StateFilter(Guided.status), ReportStep.filter(F.step == "status"))
@step
async def status_chosen(d: Dialog, pressed: ReportStep | None) -> None:
    assert pressed is not None
    status = None if pressed.value == "keep" else pressed.value
    if status is not None and status not in tuple(ProjectStatus):
        await d.say("help.stale_button")
        return
    d.guided["status"] = status
    # the status decides the progress where it can: completed is 100 %, not started is 0 %
    d.guided["progress"] = (100 if status == ProjectStatus.COMPLETED
                          else 0 if status == ProjectStatus.NOT_STARTED else None)
    await d.advance("status")


@router.callback_query(StateFilter(Guided.progress), ReportStep.filter(F.step == "progress"))
@step
async def progress_chosen(d: Dialog, pressed: ReportStep | None) -> None:
    assert pressed is not None
    if pressed.value == "keep":
        d.guided["progress"] = None
    else:
        progress = parse_progress(pressed.value)
        if progress is None:  # not one of our buttons
            await d.say("help.stale_button")
            return
        d.guided["progress"] = progress
    await d.advance("progress")


@router.message(StateFilter(Guided.progress), *TYPED)
@step
async def progress_typed(d: Dialog, _: ReportStep | None) -> None:
    text = d.message.text or ""
    progress = parse_progress(text)
    if progress is None:
        await d.say("report.bad_progress", d.keyboard("progress"), text=text[:50])
        return
    d.guided["progress"] = progress
    await d.advance("progress")


@router.callback_query(StateFilter(Guided.milestones), ReportStep.filter(F.step == "ms"))
@step
async def milestone_toggled(d: Dialog, pressed: ReportStep | None) -> None:
    assert pressed is not None and isinstance(d.event, CallbackQuery)
    open_ids = {m.id for m in open_milestones(d.project)}
    chosen = set(d.guided.get("ms") or ())
    picked = int(pressed.value) if pressed.value.isdigit() else -1
    if picked not in open_ids:
        await d.say("help.stale_button")
        return
    chosen ^= {picked}
    d.guided["ms"] = sorted(chosen)
    await d.keep()
    await edit_or_send(d.event, d.ctx.t("report.ask_milestones", project=d.project), d.keyboard("milestones"))


@router.callback_query(StateFilter(Guided.milestones), ReportStep.filter(F.step == "msdone"))
@router.callback_query(StateFilter(Guided.investment, Guided.problems, Guided.next_steps),
                       ReportStep.filter(F.step == "skip"))
@router.callback_query(StateFilter(Guided.photos), ReportStep.filter(F.step == "photos"))
@step
async def step_done(d: Dialog, _: ReportStep | None) -> None:
    await d.advance(await d.step() or "photos")


@router.message(StateFilter(Guided.investment), *TYPED)
@step
async def investment_typed(d: Dialog, _: ReportStep | None) -> None:
    text = d.message.text or ""
    amount = parse_amount(text)
    if amount is None:
        await d.say("report.bad_investment", d.keyboard("investment"), text=text[:50])
        return
    d.guided["investment"] = str(amount)
    await d.advance("investment")


@router.message(StateFilter(Guided.problems, Guided.next_steps), *TYPED)
@step
async def text_typed(d: Dialog, _: ReportStep | None) -> None:
    name = "problems" if await d.state.get_state() == Guided.problems.state else "next_steps"
    d.guided[name] = (d.message.text or "").strip()[:MAX_TEXT]
    await d.advance(name)


@router.message(StateFilter(Guided.photos), F.photo)
@step
async def photo_received(d: Dialog, _: ReportStep | None) -> None:
    message, settings = d.message, d.ctx.settings
    photo = largest(message)
    assert photo is not None and message.bot is not None
    photos = list(d.guided.get("photos") or [])
    if too_big(photo, settings):
        await d.say("help.photo_too_big", max_mb=settings.max_photo_mb)
        return
    if len(photos) >= MAX_PHOTOS:
        await d.say("report.too_many_photos", d.keyboard("photos"), limit=MAX_PHOTOS)
        return
    photos.append(as_dict(await keep_photo(message.bot, photo, settings, d.project.code, d.ctx.now())))
    d.guided["photos"] = photos
    await d.keep()
    await d.say("report.photo_added", d.keyboard("photos"), count=len(photos))


# --- saving --------------------------------------------------------------------------------------

@router.callback_query(StateFilter(Guided.confirm), ReportStep.filter(F.step.in_({"save", "confirm"})), flags=DIALOG)
async def save(query: CallbackQuery, callback_data: ReportStep, project: Project, ctx: Ctx, state: FSMContext) -> None:
    """The project comes from AccessMiddleware (flag "dialog"), authorized again at the moment of saving."""
    d = Dialog(query, ctx, state, await load(state), project)
    data = report_input(d.guided)
    problems = check(project, data)
    if problems:
        await d.say("report.rejected", d.keyboard("confirm"), reason=problems[0])
        return
    reasons = needs_confirmation(project, data)
    if reasons and callback_data.step != "confirm":
        keyboard = inline([[button(ctx.t("buttons.confirm_anyway"), ReportStep(step="confirm"))], cancel_row(ctx.t)])
        await d.say("report.confirm_needed", keyboard, reasons=reasons, s=summary(d.guided, project))
        return
    try:
        report = await save_report(ctx.session, project, data, person_id=ctx.bound.id, now=ctx.now(),
                                   tz=ctx.settings.tz, update_id=ctx.update_id)
    except ReportRejected as exc:
        await d.say("report.rejected", reason=exc.code)
        return
    await d.end()
    header = ctx.t("report.saved", project=project, undo_minutes=ctx.settings.undo_minutes) if report else \
        ctx.t("quick.duplicate")
    await send_card(query, project, ctx, undo=report is not None, header=header, saved=report)


# --- anything else while a dialog is open --------------------------------------------------------

@router.message(StateFilter(Guided), ~F.text.startswith("/"))
@step
async def off_script(d: Dialog, _: ReportStep | None) -> None:
    at = await d.step() or "status"
    if d.message.document is not None and at == "photos":
        await d.say("help.document", d.keyboard(at))
        return
    await d.say("report.use_buttons", d.keyboard(at), project=d.project, step=at)


@router.callback_query(ReportStep.filter())
async def stale_step(query: CallbackQuery, ctx: Ctx) -> None:
    await answer(query, ctx.t("help.stale_button"))
