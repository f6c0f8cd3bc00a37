"""Authorization for every handler, in one place.

A handler declares what it does with a flag, e.g. `@router.message(Command("list"), flags={"access": "see"})`.
This inner middleware (registered once on the dispatcher, so it covers every router) then:
- refuses people who are not bound (they are told how to get an invite, and see nothing);
- finds the project the event is about (a filter's `code`, the button's `project_id`, or as the flag
  `project_from` says: "command" its argument, "dialog" the guided report's), answers an unknown code,
  checks bot.domain.access.can against the project's county and injects `project`;
- without a project, checks against the county a button names, else the person's own scope.
Handlers without the flag (start, help, language, the catch-alls) decide for themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.filters import CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.access import can
from bot.services.project_views import project_by_code, project_by_id
from bot.store.models import Person, Project
from bot.texts import Texts
from handlers.common import answer


async def _code(data: dict[str, Any]) -> str | None:
    if data.get("code"):
        return str(data["code"])
    old_button_code = getattr(data.get("callback_data"), "code", None)  # callbacks.OldProjectButton
    if old_button_code:
        return str(old_button_code)
    source = get_flag(data, "project_from")
    command: CommandObject | None = data.get("command")
    if source == "command" and command is not None and command.args:
        return command.args  # all of it: `/project HC 003` is HC-003 (bot/domain/project_code.py)
    if source == "dialog":
        state: FSMContext | None = data.get("state")
        if state is not None:
            guided = (await state.get_data()).get("guided") or {}
            return guided.get("code")
    return None


class AccessMiddleware(BaseMiddleware):
    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        action = get_flag(data, "access")
        if action is None or not isinstance(event, Message | CallbackQuery):
            return await handler(event, data)
        person: Person | None = data.get("person")
        texts: Texts = data["texts"]
        lang: str = data["lang"]
        if person is None:
            await answer(event, texts(lang, "start.unbound"))
            return None
        session: AsyncSession = data["session"]
        project_id = getattr(data.get("callback_data"), "project_id", None)
        code = None if project_id else await _code(data)
        if project_id or code is not None:
            known = data.get("project")  # found by a filter already (handlers.quick_report.WithCode)
            if isinstance(known, Project) and not project_id and known.code == code:
                project: Project | None = known
            else:
                project = await (project_by_id(session, project_id) if project_id
                                 else project_by_code(session, code or ""))
            if project is None:  # a button of a project removed since: the button is stale, not the code
                await answer(event, texts(lang, "help.stale_button") if project_id
                             else texts(lang, "access.unknown_project", code=(code or "")[:40]))
                return None
            if not can(person.role, person.county_id, action, project.county_id):
                anywhere = can(person.role, person.county_id, action, person.county_id)
                await answer(event, texts(lang, "access.refused_project", action=action, code=project.code)
                             if anywhere else texts(lang, "access.refused", action=action, role=person.role))
                return None
            data["project"] = project
            return await handler(event, data)
        county_id = getattr(data.get("callback_data"), "county_id", None)
        target = county_id if county_id else person.county_id
        if not can(person.role, person.county_id, action, target):
            await answer(event, texts(lang, "access.refused", action=action, role=person.role))
            return None
        return await handler(event, data)
