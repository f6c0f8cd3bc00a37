"""The guided report (更新进度): project → status → progress → milestones reached → investment →
problems → next steps → photos → summary → saved, answered with the updated card.

The dialog's answers live in the FSM data under "guided" (the database or Redis), so a restart
in the middle loses nothing. Steps that do not apply are skipped (no progress to ask for a project
reported completed or not started; no milestones when none is open). Going backwards or reopening
a completed project needs one more explicit confirmation before saving."""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from aiogram import Bot, F
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.clock import Clock
from bot.domain.states import ProjectStatus
from bot.services.project_views import counties, county_projects, page_of, project_by_code
from bot.services.reports import ReportInput, ReportRejected, check, needs_confirmation, resolve, save_report
from bot.store.models import County, Person, Project
from bot.telegram.callbacks import CountyPick, ProjectAction, ReportStep
from bot.texts import Texts
from handlers.cards import send_card
from handlers.common import RouterSpec, answer, edit_or_send
from handlers.keyboards import MenuButton, Rows, button, cancel_row, chunked, county_keyboard, inline, pager
from handlers.photos import as_dict, forget_photos, from_dicts, keep_photo, largest, too_big

router = RouterSpec("guided_report")
REPORT = {"access": "report"}
DIALOG = {"access": "report", "project_from": "dialog"}
PROJECTS_PER_PAGE = 8
STEPS = ("status", "progress", "milestones", "investment", "problems", "next_steps", "photos", "confirm")
MAX_TEXT = 2000  # problems / next steps: a paragraph, not a document
MAX_PHOTOS = 10


class Guided(StatesGroup):
    status = State()
    progress = State()
    milestones = State()
    investment = State()
    problems = State()
    next_steps = State()
    photos = State()
    confirm = State()


STATE_OF = {name: getattr(Guided, name) for name in STEPS}


# --- the dialog's data ---------------------------------------------------------------------------

async def _guided(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get("guided") or {})


async def _store(state: FSMContext, guided: dict[str, Any] | None) -> None:
    data = await state.get_data()
    if guided is None:
        data.pop("guided", None)
    else:
        data["guided"] = guided
    await state.set_data(data)


def _input(guided: dict[str, Any]) -> ReportInput:
    return ReportInput(
        status=guided.get("status"),
        progress=guided.get("progress"),
        investment_done=Decimal(guided["investment"]) if guided.get("investment") is not None else None,
        milestone_ids=tuple(guided.get("ms") or ()),
        problems=guided.get("problems") or "",
        next_steps=guided.get("next_steps") or "",
        photos=from_dicts(guided.get("photos") or []),
    )


def _open_milestones(project: Project) -> list[Any]:
    return [m for m in project.milestones if m.done is None]


def _applies(step: str, guided: dict[str, Any], project: Project) -> bool:
    status = guided.get("status") or project.status
    if step == "progress":
        return status == ProjectStatus.STARTED
    if step == "milestones":
        return status != ProjectStatus.NOT_STARTED and bool(_open_milestones(project))
    return True


def _after(step: str, guided: dict[str, Any], project: Project) -> str:
    for candidate in STEPS[STEPS.index(step) + 1 :]:
        if _applies(candidate, guided, project):
            return candidate
    return "confirm"


# --- asking --------------------------------------------------------------------------------------

def _keyboard(step: str, guided: dict[str, Any], project: Project, texts: Texts, lang: str) -> InlineKeyboardMarkup:
    rows: Rows = []
    if step == "status":
        rows = chunked([button(texts(lang, "buttons.status", code=s), ReportStep(step="status", value=s))
                        for s in ProjectStatus], 3)
        rows.append([button(texts(lang, "buttons.keep_status", code=project.status),
                            ReportStep(step="status", value="keep"))])
    elif step == "progress":
        rows = chunked([button(texts(lang, "buttons.progress", value=v), ReportStep(step="progress", value=str(v)))
                        for v in range(0, 101, 10)], 4)
        rows.append([button(texts(lang, "buttons.keep_progress", value=project.progress),
                            ReportStep(step="progress", value="keep"))])
    elif step == "milestones":
        chosen = set(guided.get("ms") or ())
        rows = [[button(texts(lang, "buttons.milestone", title=m.name, chosen=m.id in chosen),
                        ReportStep(step="ms", value=str(m.id)))] for m in _open_milestones(project)]
        rows.append([button(texts(lang, "buttons.done"), ReportStep(step="msdone"))])
    elif step in ("investment", "problems", "next_steps"):
        rows = [[button(texts(lang, "buttons.skip"), ReportStep(step="skip"))]]
    elif step == "photos":
        count = len(guided.get("photos") or [])
        label = texts(lang, "buttons.photos_done", count=count) if count else texts(lang, "buttons.skip")
        rows = [[button(label, ReportStep(step="photos"))]]
    elif step == "confirm":
        rows = [[button(texts(lang, "buttons.save"), ReportStep(step="save"))]]
    rows.append(cancel_row(texts, lang))
    return inline(rows)


def _summary(guided: dict[str, Any], project: Project) -> dict[str, Any]:
    data = _input(guided)
    status, progress = resolve(project, data)
    names = {m.id: m.name for m in project.milestones}
    return {
        "old_status": project.status, "status": status, "old_progress": project.progress, "progress": progress,
        "milestones": [names[i] for i in data.milestone_ids if i in names], "investment": data.investment_done,
        "problems": data.problems, "next_steps": data.next_steps, "photos": len(data.photos),
    }


async def _ask(
    event: Message | CallbackQuery, step: str, guided: dict[str, Any], project: Project, state: FSMContext,
    texts: Texts, lang: str,
) -> None:
    await state.set_state(STATE_OF[step])
    context: dict[str, Any] = {"project": project}
    if step == "photos":
        context["count"] = len(guided.get("photos") or [])
    if step == "confirm":
        context["s"] = _summary(guided, project)
    await answer(event, texts(lang, f"report.ask_{step}", **context), _keyboard(step, guided, project, texts, lang))


async def _advance(
    event: Message | CallbackQuery, step: str, guided: dict[str, Any], project: Project, state: FSMContext,
    texts: Texts, lang: str,
) -> None:
    await _store(state, guided)
    await _ask(event, _after(step, guided, project), guided, project, state, texts, lang)


async def _project(session: AsyncSession, guided: dict[str, Any]) -> Project | None:
    return await project_by_code(session, guided["code"]) if guided.get("code") else None


# --- starting ------------------------------------------------------------------------------------

async def _choose_project(
    event: Message | CallbackQuery, county_id: int, page: int, session: AsyncSession, texts: Texts, lang: str,
    *, edit: bool = False,
) -> None:
    projects = await county_projects(session, county_id)
    if not projects:
        await answer(event, texts(lang, "report.no_projects"))
        return
    page, pages = page_of(len(projects), page, PROJECTS_PER_PAGE)
    shown = projects[page * PROJECTS_PER_PAGE : (page + 1) * PROJECTS_PER_PAGE]
    rows: Rows = [[button(texts(lang, "buttons.project", code=p.code, title=p.name),
                          ProjectAction(action="report", project_id=p.id))] for p in shown]
    rows.append(pager(texts, lang, page, pages, lambda n: ReportStep(step="ppage", value=f"{county_id}-{n}")))
    rows.append(cancel_row(texts, lang))
    county = await session.get_one(County, county_id)
    text = texts(lang, "report.choose_project", county=county.name, page=page, pages=pages)
    if edit and isinstance(event, CallbackQuery):
        await edit_or_send(event, text, inline(rows))
    else:
        await answer(event, text, inline(rows))


@router.message(Command("report"), flags={**REPORT, "project_from": "command"})
@router.message(MenuButton("menu_report"), flags=REPORT)
async def start_report(
    message: Message, person: Person, session: AsyncSession, state: FSMContext, texts: Texts, lang: str,
    project: Project | None = None,
) -> None:
    if project is not None:
        await _begin(message, project, state, texts, lang)
    elif person.county_id is None:  # an administrator: any county
        await answer(message, texts(lang, "report.choose_county"),
                     county_keyboard(texts, lang, await counties(session), "report"))
    else:
        await _choose_project(message, person.county_id, 0, session, texts, lang)


@router.callback_query(CountyPick.filter(F.purpose == "report"), flags=REPORT)
async def county_chosen(
    query: CallbackQuery, callback_data: CountyPick, session: AsyncSession, texts: Texts, lang: str
) -> None:
    await _choose_project(query, callback_data.county_id, 0, session, texts, lang)


@router.callback_query(ReportStep.filter(F.step == "ppage"), flags=REPORT)
async def project_page(
    query: CallbackQuery, callback_data: ReportStep, person: Person, session: AsyncSession, texts: Texts, lang: str
) -> None:
    county, _, page = callback_data.value.partition("-")
    if not county.isdigit() or not page.isdigit():
        await answer(query, texts(lang, "help.stale_button"))
        return
    if person.county_id is not None and int(county) != person.county_id:
        await answer(query, texts(lang, "access.refused", action="report", role=person.role))
        return
    await _choose_project(query, int(county), int(page), session, texts, lang, edit=True)


@router.callback_query(ProjectAction.filter(F.action == "report"), flags=REPORT)
async def project_chosen(query: CallbackQuery, project: Project, state: FSMContext, texts: Texts, lang: str) -> None:
    await _begin(query, project, state, texts, lang)


async def _begin(
    event: Message | CallbackQuery, project: Project, state: FSMContext, texts: Texts, lang: str
) -> None:
    guided = {"code": project.code, "status": None, "progress": None, "ms": [], "investment": None,
              "problems": "", "next_steps": "", "photos": []}
    await _store(state, guided)
    await _ask(event, "status", guided, project, state, texts, lang)


# --- cancel, from any step -----------------------------------------------------------------------

@router.message(Command("cancel"))
@router.message(StateFilter(Guided), F.text.lower().in_({"取消", "cancel"}))
@router.callback_query(ReportStep.filter(F.step == "cancel"))
async def cancel(event: Message | CallbackQuery, state: FSMContext, settings: Settings, texts: Texts,
                 lang: str) -> None:
    guided = await _guided(state)
    if not guided and await state.get_state() is None:
        await answer(event, texts(lang, "report.nothing_to_cancel"))
        return
    forget_photos(settings, guided.get("photos") or [])
    await _store(state, None)
    await state.set_state(None)
    await answer(event, texts(lang, "report.cancelled"))


# --- the steps -----------------------------------------------------------------------------------

async def _current(
    event: Message | CallbackQuery, state: FSMContext, session: AsyncSession, texts: Texts, lang: str
) -> tuple[dict[str, Any], Project] | None:
    """The dialog and its project, or None after telling the person the dialog is over."""
    guided = await _guided(state)
    project = await _project(session, guided)
    if project is None:
        await _store(state, None)
        await state.set_state(None)
        await answer(event, texts(lang, "help.stale_button"))
        return None
    return guided, project


@router.callback_query(StateFilter(Guided.status), ReportStep.filter(F.step == "status"))
async def status_chosen(
    query: CallbackQuery, callback_data: ReportStep, state: FSMContext, session: AsyncSession, texts: Texts,
    lang: str,
) -> None:
    current = await _current(query, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    status = None if callback_data.value == "keep" else callback_data.value
    if status is not None and status not in tuple(ProjectStatus):
        await answer(query, texts(lang, "help.stale_button"))
        return
    guided["status"] = status
    # the status decides the progress where it can: completed is 100 %, not started is 0 %
    guided["progress"] = (100 if status == ProjectStatus.COMPLETED
                          else 0 if status == ProjectStatus.NOT_STARTED else None)
    await _advance(query, "status", guided, project, state, texts, lang)


def _number(text: str) -> Decimal | None:
    cleaned = unicodedata.normalize("NFKC", text).strip().rstrip("%").replace(",", "")
    for unit in ("万元", "万", "percent"):
        cleaned = cleaned.removesuffix(unit).strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


@router.callback_query(StateFilter(Guided.progress), ReportStep.filter(F.step == "progress"))
async def progress_chosen(
    query: CallbackQuery, callback_data: ReportStep, state: FSMContext, session: AsyncSession, texts: Texts,
    lang: str,
) -> None:
    current = await _current(query, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    guided["progress"] = None if callback_data.value == "keep" else int(callback_data.value)
    await _advance(query, "progress", guided, project, state, texts, lang)


@router.message(StateFilter(Guided.progress), F.text, ~F.text.startswith("/"))
async def progress_typed(
    message: Message, state: FSMContext, session: AsyncSession, texts: Texts, lang: str
) -> None:
    current = await _current(message, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    value = _number(message.text or "")
    if value is None or value != value.to_integral_value() or not 0 <= value <= 100:
        await answer(message, texts(lang, "report.bad_progress", text=(message.text or "")[:50]),
                     _keyboard("progress", guided, project, texts, lang))
        return
    guided["progress"] = int(value)
    await _advance(message, "progress", guided, project, state, texts, lang)


@router.callback_query(StateFilter(Guided.milestones), ReportStep.filter(F.step == "ms"))
async def milestone_toggled(
    query: CallbackQuery, callback_data: ReportStep, state: FSMContext, session: AsyncSession, texts: Texts,
    lang: str,
) -> None:
    current = await _current(query, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    open_ids = {m.id for m in _open_milestones(project)}
    chosen = set(guided.get("ms") or ())
    picked = int(callback_data.value) if callback_data.value.isdigit() else -1
    if picked not in open_ids:
        await answer(query, texts(lang, "help.stale_button"))
        return
    chosen ^= {picked}
    guided["ms"] = sorted(chosen)
    await _store(state, guided)
    await edit_or_send(query, texts(lang, "report.ask_milestones", project=project),
                       _keyboard("milestones", guided, project, texts, lang))


@router.callback_query(StateFilter(Guided.milestones), ReportStep.filter(F.step == "msdone"))
@router.callback_query(StateFilter(Guided.investment, Guided.problems, Guided.next_steps),
                       ReportStep.filter(F.step == "skip"))
@router.callback_query(StateFilter(Guided.photos), ReportStep.filter(F.step == "photos"))
async def step_done(query: CallbackQuery, state: FSMContext, session: AsyncSession, texts: Texts, lang: str) -> None:
    current = await _current(query, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    step = (await state.get_state() or "").rpartition(":")[2]
    await _advance(query, step if step in STEPS else "photos", guided, project, state, texts, lang)


@router.message(StateFilter(Guided.investment), F.text, ~F.text.startswith("/"))
async def investment_typed(message: Message, state: FSMContext, session: AsyncSession, texts: Texts,
                           lang: str) -> None:
    current = await _current(message, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    value = _number(message.text or "")
    if value is None or value < 0 or value >= Decimal("1e12"):
        await answer(message, texts(lang, "report.bad_investment", text=(message.text or "")[:50]),
                     _keyboard("investment", guided, project, texts, lang))
        return
    guided["investment"] = str(value.quantize(Decimal("0.01")))
    await _advance(message, "investment", guided, project, state, texts, lang)


@router.message(StateFilter(Guided.problems, Guided.next_steps), F.text, ~F.text.startswith("/"))
async def text_typed(message: Message, state: FSMContext, session: AsyncSession, texts: Texts, lang: str) -> None:
    current = await _current(message, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    step = "problems" if await state.get_state() == Guided.problems.state else "next_steps"
    guided[step] = (message.text or "").strip()[:MAX_TEXT]
    await _advance(message, step, guided, project, state, texts, lang)


@router.message(StateFilter(Guided.photos), F.photo)
async def photo_received(
    message: Message, bot: Bot, state: FSMContext, session: AsyncSession, settings: Settings, texts: Texts,
    lang: str, clock: Clock,
) -> None:
    current = await _current(message, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    photo = largest(message)
    assert photo is not None
    photos = list(guided.get("photos") or [])
    if too_big(photo, settings):
        await answer(message, texts(lang, "help.photo_too_big", max_mb=settings.max_photo_mb))
        return
    if len(photos) >= MAX_PHOTOS:
        await answer(message, texts(lang, "report.too_many_photos", limit=MAX_PHOTOS),
                     _keyboard("photos", guided, project, texts, lang))
        return
    photos.append(as_dict(await keep_photo(bot, photo, settings, project.code, clock())))
    guided["photos"] = photos
    await _store(state, guided)
    await answer(message, texts(lang, "report.photo_added", count=len(photos)),
                 _keyboard("photos", guided, project, texts, lang))


# --- saving --------------------------------------------------------------------------------------

@router.callback_query(StateFilter(Guided.confirm), ReportStep.filter(F.step.in_({"save", "confirm"})), flags=DIALOG)
async def save(
    query: CallbackQuery, callback_data: ReportStep, project: Project, person: Person, state: FSMContext,
    session: AsyncSession, settings: Settings, texts: Texts, lang: str, clock: Clock, event_update: Update,
) -> None:
    guided = await _guided(state)
    data = _input(guided)
    problems = check(project, data)
    if problems:
        await answer(query, texts(lang, "report.rejected", reason=problems[0]), _keyboard("confirm", guided, project,
                                                                                          texts, lang))
        return
    reasons = needs_confirmation(project, data)
    if reasons and callback_data.step != "confirm":
        keyboard = inline([[button(texts(lang, "buttons.confirm_anyway"), ReportStep(step="confirm"))],
                           cancel_row(texts, lang)])
        await answer(query, texts(lang, "report.confirm_needed", reasons=reasons, s=_summary(guided, project)),
                     keyboard)
        return
    try:
        report = await save_report(session, project, data, person_id=person.id, now=clock(), tz=settings.tz,
                                   update_id=event_update.update_id)
    except ReportRejected as exc:
        await answer(query, texts(lang, "report.rejected", reason=exc.code))
        return
    await _store(state, None)
    await state.set_state(None)
    header = texts(lang, "report.saved", project=project, undo_minutes=settings.undo_minutes) if report else \
        texts(lang, "quick.duplicate")
    await send_card(query, project, person, session, settings, texts, lang, clock, undo=report is not None,
                    header=header, saved=report)


# --- anything else while a dialog is open --------------------------------------------------------

@router.message(StateFilter(Guided), ~F.text.startswith("/"))
async def off_script(message: Message, state: FSMContext, session: AsyncSession, texts: Texts, lang: str) -> None:
    current = await _current(message, state, session, texts, lang)
    if current is None:
        return
    guided, project = current
    step = (await state.get_state() or "").rpartition(":")[2]
    step = step if step in STEPS else "status"
    if message.document is not None and step == "photos":
        await answer(message, texts(lang, "help.document"), _keyboard(step, guided, project, texts, lang))
        return
    await answer(message, texts(lang, "report.use_buttons", project=project, step=step),
                 _keyboard(step, guided, project, texts, lang))


@router.callback_query(ReportStep.filter())
async def stale_step(query: CallbackQuery, texts: Texts, lang: str) -> None:
    await answer(query, texts(lang, "help.stale_button"))
