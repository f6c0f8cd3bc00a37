"""`qingshui jobs list` and `qingshui jobs run NAME [--at ISO-DATETIME]`.

`run` queues what the job decides at that moment and commits; it never sends (the service's
sender does), so running it beside the service is safe and running it twice queues nothing new.
"""

from __future__ import annotations

import argparse
import datetime as dt

from sqlalchemy import func, select

from bot.config import Settings
from bot.domain.clock import utcnow
from bot.domain.states import OutboxState
from bot.errors import UserError
from bot.scheduler import ALERT_HOURS, ALERT_MINUTE, JOB_NAMES, JobContext, next_runs, run_job
from bot.store.db import open_database
from bot.store.models import JobRun, Outbox
from bot.texts import render


def parse_at(value: str | None, settings: Settings) -> dt.datetime:
    """--at as an aware UTC moment: naive means the city's zone; None means now."""
    if value is None:
        return utcnow()
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(render(settings.default_language, "cli_jobs.bad_at", value=value)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings.tz)
    return moment.astimezone(dt.UTC)


async def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.jobs_command == "list":
        print(await list_jobs(settings, utcnow()))
        return 0
    print(await run_named(settings, args.name, parse_at(args.at, settings)))
    return 0


async def list_jobs(settings: Settings, now: dt.datetime) -> str:
    lang, tz = settings.default_language, settings.tz
    async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
        last = {row.name: row for row in await session.scalars(select(JobRun))}
        by_state = select(Outbox.state, func.count()).group_by(Outbox.state)
        states = {state: count for state, count in await session.execute(by_state)}
    upcoming = next_runs(settings, now)
    lines = [render(lang, "cli_jobs.list_header", tz=settings.timezone)]
    for name in JOB_NAMES:
        schedule = render(
            lang, "cli_jobs.schedule", job=name, reminder_time=settings.reminder_time, alerts_hours=ALERT_HOURS,
            alerts_minute=ALERT_MINUTE, digest_weekday=settings.digest_weekday, digest_time=settings.digest_time,
        )
        record = last.get(name)
        lines.append(render(
            lang, "cli_jobs.list_row", job=name, schedule_text=schedule, next_run=upcoming[name],
            last_run=record.last_at.astimezone(tz) if record else None, summary=record.summary if record else "",
        ))
    lines.append(render(lang, "cli_jobs.list_footer"))
    lines.append(render(lang, "cli_jobs.outbox",
                        pending=states.get(OutboxState.PENDING, 0) + states.get(OutboxState.SENDING, 0),
                        sent=states.get(OutboxState.SENT, 0), dead=states.get(OutboxState.DEAD, 0),
                        expired=states.get(OutboxState.EXPIRED, 0)))
    return "\n".join(lines)


async def run_named(settings: Settings, name: str, at: dt.datetime) -> str:
    lang = settings.default_language
    if name not in JOB_NAMES:
        raise UserError(render(lang, "cli_jobs.unknown_job", job=name, names=", ".join(JOB_NAMES)))
    ctx = JobContext.from_settings(settings)
    async with open_database(settings.db_url) as sessionmaker, sessionmaker() as session:
        try:
            result = await run_job(session, name, at, ctx)
        except ImportError as exc:
            raise UserError(render(lang, "cli_jobs.not_available", job=name, error=str(exc))) from None
    lines = [
        render(lang, "cli_jobs.run_header", job=name, at=at.astimezone(settings.tz)),
        render(lang, "cli_jobs.run_queued", queued=result.queued),
        *(render(lang, "cli_jobs.run_detail", line=line) for line in result.details),
        render(lang, "cli_jobs.run_not_sent"),
    ]
    return "\n".join(lines)
