"""Job names → job functions, and the one way to run a job (commit + JobRun record).

Modules are imported when a job is first asked for, so a job whose module is missing or broken
fails on its own and does not stop the others (or this module) from loading."""

from __future__ import annotations

import datetime as dt
import importlib

from sqlalchemy.ext.asyncio import AsyncSession

from bot.ledger.scan import collector_paused
from bot.store.models import JobRun
from jobs.base import JobContext, JobFunction, JobResult

# name -> module in jobs/ defining `async def run(session, now, ctx) -> JobResult`
JOB_MODULES: dict[str, str] = {
    "reminders": "jobs.reminders",
    "alerts": "jobs.alerts",
    "digest": "jobs.digest",
}
JOB_NAMES: tuple[str, ...] = tuple(JOB_MODULES)


def get_job(name: str) -> JobFunction:
    """The job function called `name`; KeyError for an unknown name."""
    module_name = JOB_MODULES[name]
    module = importlib.import_module(module_name)
    job: JobFunction = module.run
    return job


async def run_job(session: AsyncSession, name: str, now: dt.datetime, ctx: JobContext) -> JobResult:
    """Run job `name` for the moment `now` and commit its queued rows with its JobRun record.

    On an exception nothing the job did is kept (rolled back), and the exception propagates."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: give an aware one")
    job = get_job(name)
    try:
        with collector_paused():
            result = await job(session, now, ctx)
        record = await session.get(JobRun, name)
        if record is None:
            record = JobRun(name=name, last_at=now)
            session.add(record)
        record.last_at = now
        record.summary = result.summary()[:2000]
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return result


__all__ = ["JOB_MODULES", "JOB_NAMES", "get_job", "run_job"]
