"""Monthly reminders and follow-ups (一月一更新) for county contacts.

At `now` the job works out which step of this month's cycle is due (bot.domain.cycle) and queues, for each
county contact (bound, reachable) whose county still has projects without this month's report,
ONE message listing those projects with a report button each. The outbox key
`reminder:<person>:<period>:<step>` makes a second run for the same step queue nothing.

Decisions:
- completed projects need no monthly report, so they are never listed (a project completed this
  month is done with reporting);
- a contact whose projects are all reported gets nothing; a county without a contact gets nothing
  here (the alerts job escalates missed updates after the deadline);
- when the service was down through a step, only the latest due step is queued, and someone who got
  no message yet this month gets the reminder's wording rather than a follow-up's;
- the message is queued for the end of quiet hours when the run falls in them;
- it expires when the month's deadline day is over (bot.domain.cycle.stale_from): a reminder the sender could
  not deliver by then (service down, Telegram unreachable) is marked 'expired', never sent late; the
  missed update is then the alerts job's, which tells the contact and escalates.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.store import channels_for
from bot.domain.cycle import cycle_for, due_step, stale_from
from bot.domain.periods import period_of
from bot.domain.states import ProjectStatus, Role
from bot.domain.workdays import workdays_between
from bot.services.reports import reported_project_ids
from bot.store.models import County, Outbox, Person, Project
from bot.store.outbox import enqueue, outbox_key
from bot.telegram.callbacks import ProjectAction
from jobs.base import JobContext, JobResult
from jobs.channel_routing import queue_reminders

KIND = "reminder"
# Keeps a message under Telegram's 4,096 characters and its keyboard under 100 buttons.
MAX_LISTED = 40
BUTTON_NAME_CHARS = 24


def report_button(project: Project) -> dict[str, str]:
    name = project.name if len(project.name) <= BUTTON_NAME_CHARS else project.name[: BUTTON_NAME_CHARS - 1] + "…"
    return {
        "text": f"📝 {project.code} {name}",
        "callback_data": ProjectAction(action="report", project_id=project.id).pack(),
    }


async def _contacts(session: AsyncSession) -> list[Person]:
    query = (
        select(Person)
        .join(County, Person.county_id == County.id)
        .where(Person.role == Role.CONTACT, Person.reachable.is_(True), Person.telegram_id.is_not(None))
        .order_by(County.sort_order, County.id, Person.id)
    )
    return list(await session.scalars(query))


async def _open_projects(session: AsyncSession, county_ids: set[int]) -> dict[int, list[Project]]:
    """Projects that still need a monthly report (not completed), by county, in code order."""
    by_county: dict[int, list[Project]] = defaultdict(list)
    if not county_ids:
        return by_county
    query = (
        select(Project)
        .where(Project.county_id.in_(county_ids), Project.status != ProjectStatus.COMPLETED)
        .order_by(Project.code)
    )
    for project in await session.scalars(query):
        by_county[project.county_id].append(project)
    return by_county


async def _already_messaged(session: AsyncSession, period: str, before_step: int) -> set[int]:
    """People who were queued an earlier step of this period's cycle."""
    if before_step == 0:
        return set()
    keys_prefix = f"{KIND}:%:{period}:%"
    rows = await session.execute(select(Outbox.person_id, Outbox.key).where(Outbox.key.like(keys_prefix)))
    messaged: set[int] = set()
    for person_id, key in rows:
        step = key.rsplit(":", 1)[-1]
        if person_id is not None and step.isdigit() and int(step) < before_step:
            messaged.add(person_id)
    return messaged


async def run(session: AsyncSession, now: dt.datetime, ctx: JobContext) -> JobResult:
    result = JobResult()
    cli_lang = ctx.settings.default_language
    period = period_of(now, ctx.tz)
    cycle = cycle_for(period, ctx.settings)
    step = due_step(cycle, now, ctx.settings.reminder_clock, ctx.tz)
    if step is None:
        result.add(
            ctx.render(cli_lang, "cli_jobs.reminders_not_due", period=period, reminder_day=cycle.reminder_day,
                       deadline=cycle.deadline)
        )
        return result

    contacts = await _contacts(session)
    channels = await channels_for(session, "reminders")  # county groups that asked for them (README "Channels")
    counties = {c.county_id for c in contacts if c.county_id is not None} | {
        c.county_id for c in channels if c.county_id is not None}
    projects = await _open_projects(session, counties)
    all_ids = [p.id for county_projects in projects.values() for p in county_projects]
    reported = await reported_project_ids(session, period, all_ids)
    messaged_before = await _already_messaged(session, period, step)
    today = ctx.local(now).date()
    send_after = ctx.send_after(now)

    for person in contacts:
        assert person.county_id is not None and person.telegram_id is not None  # by _contacts' query
        missing = [p for p in projects.get(person.county_id, []) if p.id not in reported]
        if not missing:
            continue
        listed = missing[:MAX_LISTED]
        county_name = person.county.name if person.county else ""
        macro = "reminders.followup" if person.id in messaged_before else "reminders.reminder"
        text = ctx.render(
            ctx.lang(person), macro, person=person.name, county=county_name, period=period,
            projects=[{"code": p.code, "name": p.name, "status": p.status} for p in listed],
            more=len(missing) - len(listed), deadline=cycle.deadline,
            workdays_left=workdays_between(today, cycle.deadline),
        )
        payload: dict[str, Any] = {
            "text": text,
            "reply_markup": {"inline_keyboard": [[report_button(p)] for p in listed]},
            "project_codes": [p.code for p in missing],
        }
        queued = await enqueue(
            session, key=outbox_key(KIND, person.id, period, step), kind=KIND, chat_id=person.telegram_id,
            person_id=person.id, payload=payload, not_before=send_after, expires_at=stale_from(cycle, ctx.tz),
        )
        if queued:
            result.add(
                ctx.render(cli_lang, "cli_jobs.reminder_queued", person=person.name, county=county_name,
                           missing=len(missing), step=step, not_before=send_after.astimezone(ctx.tz)),
                queued=True,
            )
    if channels:
        names = dict((await session.execute(select(County.id, County.name))).all())

        def still_missing(county_id: int) -> list[Project]:
            return [p for p in projects.get(county_id, []) if p.id not in reported]

        result.queued += await queue_reminders(
            session, channels, missing=still_missing, counties=names, period=period, step=step, lang=cli_lang,
            listed=MAX_LISTED, deadline=cycle.deadline, not_before=send_after, expires_at=stale_from(cycle, ctx.tz))
    if not result.queued:
        result.add(ctx.render(cli_lang, "cli_jobs.reminders_none_queued", step=step, contacts=len(contacts)))
    return result
