"""The guided report's machinery (its handlers are in handlers/guided_report.py): the steps and their
order, the keyboards and the summary, and `Dialog`, the open report a step works on.

Every step handler starts the same way — load the answers so far, find their project, end the dialog
if the project is gone — so `step` does it once and hands the handler a `Dialog`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.domain.states import ProjectStatus
from bot.services.project_views import project_by_code
from bot.services.reports import ReportInput, resolve
from bot.store.models import Milestone, Project
from bot.telegram.callbacks import ReportStep
from handlers.common import answer
from handlers.context import Ctx
from handlers.keyboards import Rows, Say, button, cancel_row, chunked, inline
from handlers.photos import from_dicts

STEPS = ("status", "progress", "milestones", "investment", "problems", "next_steps", "photos", "confirm")


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


# --- the dialog's data (FSM data under "guided") ---------------------------------------------------

async def load(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get("guided") or {})


async def store(state: FSMContext, guided: dict[str, Any] | None) -> None:
    data = await state.get_data()
    if guided is None:
        data.pop("guided", None)
    else:
        data["guided"] = guided
    await state.set_data(data)


def fresh(project: Project) -> dict[str, Any]:
    return {"code": project.code, "status": None, "progress": None, "ms": [], "investment": None,
            "problems": "", "next_steps": "", "photos": []}


def report_input(guided: dict[str, Any]) -> ReportInput:
    return ReportInput(
        status=guided.get("status"),
        progress=guided.get("progress"),
        investment_done=Decimal(guided["investment"]) if guided.get("investment") is not None else None,
        milestone_ids=tuple(guided.get("ms") or ()),
        problems=guided.get("problems") or "",
        next_steps=guided.get("next_steps") or "",
        photos=from_dicts(guided.get("photos") or []),
    )


def open_milestones(project: Project) -> list[Milestone]:
    return [m for m in project.milestones if m.done is None]


# --- the order of the steps ----------------------------------------------------------------------

def _applies(step: str, guided: dict[str, Any], project: Project) -> bool:
    status = guided.get("status") or project.status
    if step == "progress":
        return status == ProjectStatus.STARTED
    if step == "milestones":
        return status != ProjectStatus.NOT_STARTED and bool(open_milestones(project))
    return True


def after(step: str, guided: dict[str, Any], project: Project) -> str:
    for candidate in STEPS[STEPS.index(step) + 1 :]:
        if _applies(candidate, guided, project):
            return candidate
    return "confirm"


# --- asking --------------------------------------------------------------------------------------

def keyboard(step: str, guided: dict[str, Any], project: Project, t: Say) -> InlineKeyboardMarkup:
    rows: Rows = []
    if step == "status":
        rows = chunked([button(t("buttons.status", code=s), ReportStep(step="status", value=s))
                        for s in ProjectStatus], 3)
        rows.append([button(t("buttons.keep_status", code=project.status), ReportStep(step="status", value="keep"))])
    elif step == "progress":
        rows = chunked([button(t("buttons.progress", value=v), ReportStep(step="progress", value=str(v)))
                        for v in range(0, 101, 10)], 4)
        rows.append([button(t("buttons.keep_progress", value=project.progress),
                            ReportStep(step="progress", value="keep"))])
    elif step == "milestones":
        chosen = set(guided.get("ms") or ())
        rows = [[button(t("buttons.milestone", title=m.name, chosen=m.id in chosen),
                        ReportStep(step="ms", value=str(m.id)))] for m in open_milestones(project)]
        rows.append([button(t("buttons.done"), ReportStep(step="msdone"))])
    elif step in ("investment", "problems", "next_steps"):
        rows = [[button(t("buttons.skip"), ReportStep(step="skip"))]]
    elif step == "photos":
        count = len(guided.get("photos") or [])
        label = t("buttons.photos_done", count=count) if count else t("buttons.skip")
        rows = [[button(label, ReportStep(step="photos"))]]
    elif step == "confirm":
        rows = [[button(t("buttons.save"), ReportStep(step="save"))]]
    rows.append(cancel_row(t))
    return inline(rows)


def summary(guided: dict[str, Any], project: Project) -> dict[str, Any]:
    data = report_input(guided)
    status, progress = resolve(project, data)
    names = {m.id: m.name for m in project.milestones}
    return {
        "old_status": project.status, "status": status, "old_progress": project.progress, "progress": progress,
        "milestones": [names[i] for i in data.milestone_ids if i in names], "investment": data.investment_done,
        "problems": data.problems, "next_steps": data.next_steps, "photos": len(data.photos),
    }


@dataclass
class Dialog:
    """An open guided report: the event being answered, the answers so far (`guided`, changed in place
    and kept by `keep`/`advance`) and their project."""

    event: Message | CallbackQuery
    ctx: Ctx
    state: FSMContext
    guided: dict[str, Any]
    project: Project

    @property
    def message(self) -> Message:
        """The event of a step that handles messages (typed text, a photo)."""
        assert isinstance(self.event, Message)
        return self.event

    async def step(self) -> str:
        """The step the person is at (the FSM state's name), or "" outside the dialog."""
        name = (await self.state.get_state() or "").rpartition(":")[2]
        return name if name in STEPS else ""

    def keyboard(self, step: str) -> InlineKeyboardMarkup:
        return keyboard(step, self.guided, self.project, self.ctx.t)

    async def say(self, name: str, markup: InlineKeyboardMarkup | None = None, **values: Any) -> None:
        await answer(self.event, self.ctx.t(name, **values), markup)

    async def keep(self) -> None:
        await store(self.state, self.guided)

    async def end(self) -> None:
        await store(self.state, None)
        await self.state.set_state(None)

    async def ask(self, step: str) -> None:
        await self.state.set_state(STATE_OF[step])
        values: dict[str, Any] = {"project": self.project}
        if step == "photos":
            values["count"] = len(self.guided.get("photos") or [])
        if step == "confirm":
            values["s"] = summary(self.guided, self.project)
        await self.say(f"report.ask_{step}", self.keyboard(step), **values)

    async def advance(self, step: str) -> None:
        """`step` is answered: keep the answers and ask the next step that applies."""
        await self.keep()
        await self.ask(after(step, self.guided, self.project))


async def begin(event: Message | CallbackQuery, ctx: Ctx, state: FSMContext, project: Project) -> None:
    dialog = Dialog(event, ctx, state, fresh(project), project)
    await dialog.keep()
    await dialog.ask("status")


StepHandler = Callable[[Dialog, ReportStep | None], Awaitable[None]]


def step(handler: StepHandler) -> Callable[..., Awaitable[None]]:
    """A step's handler as aiogram calls it: with the open dialog loaded once, here. A dialog whose
    project is gone (a new ledger import) ends, and the person is told the buttons are stale."""

    async def run(event: Message | CallbackQuery, ctx: Ctx, state: FSMContext,
                  callback_data: ReportStep | None = None) -> None:
        guided = await load(state)
        project = await project_by_code(ctx.session, guided["code"]) if guided.get("code") else None
        if project is None:
            await store(state, None)
            await state.set_state(None)
            await answer(event, ctx.t("help.stale_button"))
            return
        await handler(Dialog(event, ctx, state, guided, project), callback_data)

    # aiogram passes a handler the keyword arguments its signature names: `run`'s, so no functools.wraps
    # (aiogram would unwrap it and read `handler`'s)
    run.__name__, run.__qualname__, run.__doc__ = handler.__name__, handler.__qualname__, handler.__doc__
    return run
