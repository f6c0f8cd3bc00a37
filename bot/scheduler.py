"""The job scheduler: APScheduler in the city's zone, guarded by the one-scheduler lease.

Jobs are state, not timers: each run asks the database what is due at `now`, so the triggers
only decide how often to ask. Every instance may start a scheduler, but a job runs only while
its instance holds the `scheduler` lease; whoever gains the lease (at start-up, or taking over
from an instance that died) first runs all jobs once, catching up anything missed meanwhile.

The lease holder also prunes the outbox nightly and after its catch-up (bot/store/retention.py).

This module is the only place in bot/ that reaches into jobs/ (the command line and the demo run jobs
through it; bot/telegram/background.py starts the scheduler).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.clock import Clock, utcnow
from bot.ledger.scan import give_memory_back
from bot.store.lease import SCHEDULER_LEASE, LeaseKeeper, default_name
from bot.store.retention import prune_outbox
from jobs.base import JobContext, JobResult
from jobs.registry import JOB_NAMES, run_job

# the command line and the demo run jobs through here: bot/ reaches into jobs/ only in this module
__all__ = ["JOB_NAMES", "JobContext", "JobResult", "JobScheduler", "job_triggers", "next_runs", "run_job"]

log = logging.getLogger(__name__)


# Alerts are looked at hourly through the working day (and at start-up); quiet hours hold the sending.
ALERT_HOURS = "9-18"
ALERT_MINUTE = 15
# Old outbox rows are deleted once a night (and at start-up), when the chat is quiet.
RETENTION_HOUR, RETENTION_MINUTE = 3, 40
RETENTION_JOB = "outbox-retention"


def job_triggers(settings: Settings) -> dict[str, BaseTrigger]:
    """When each job is asked to run, in the city's zone."""
    tz = settings.tz
    reminder, digest = settings.reminder_clock, settings.digest_clock
    return {
        "reminders": CronTrigger(hour=reminder.hour, minute=reminder.minute, timezone=tz),
        "alerts": CronTrigger(hour=ALERT_HOURS, minute=ALERT_MINUTE, timezone=tz),
        "digest": CronTrigger(day_of_week=settings.digest_weekday, hour=digest.hour, minute=digest.minute,
                              timezone=tz),
    }


def next_runs(settings: Settings, now: dt.datetime) -> dict[str, dt.datetime | None]:
    """Each job's next scheduled run after `now`, in the city's zone."""
    local_now = now.astimezone(settings.tz)
    return {name: trigger.get_next_fire_time(None, local_now) for name, trigger in job_triggers(settings).items()}


class JobScheduler:
    """Runs the jobs on their triggers while holding the scheduler lease."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = utcnow,
        holder: str | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.on_queued = on_queued
        self.ctx = JobContext.from_settings(settings)
        self.keeper = LeaseKeeper(
            sessionmaker, SCHEDULER_LEASE, (holder or default_name())[:64], settings.lease_seconds,
            clock=clock, on_acquired=self._catch_up_soon,
        )
        self.scheduler = AsyncIOScheduler(
            timezone=settings.tz,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self._run_lock = asyncio.Lock()  # one job at a time: a catch-up and a trigger never overlap
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def is_leader(self) -> bool:
        return self.keeper.held

    async def run_now(self, name: str) -> JobResult | None:
        """Run one job for the current moment if this instance holds the lease; None when it does not."""
        async with self._run_lock:
            if not self.keeper.held:
                log.debug("job %s skipped: another instance holds the scheduler lease", name)
                return None
            now = self.clock()
            try:
                async with self.sessionmaker() as session:
                    result = await run_job(session, name, now, self.ctx)
            except ImportError as exc:
                log.warning("job %s is not available: %s", name, exc)
                return None
            except Exception:
                log.exception("job %s failed at %s; its next run tries again", name, now.isoformat())
                return None
            finally:
                give_memory_back()  # a job reads the whole ledger: its peak need not stay
            log.info("job %s at %s: %s", name, now.astimezone(self.settings.tz).isoformat(), result.summary())
            if result.queued and self.on_queued is not None:
                self.on_queued()
            return result

    async def catch_up(self) -> None:
        """Run every job once (at start-up or on taking the lease over): anything missed is due now."""
        for name in JOB_NAMES:
            await self.run_now(name)
        await self.prune()

    async def prune(self) -> None:
        """Delete outbox rows past their retention (bot.store.retention), if this instance holds the lease."""
        async with self._run_lock:
            if not self.keeper.held:
                return
            try:
                await prune_outbox(self.sessionmaker, self.settings, self.clock())
            except Exception:
                log.exception("outbox retention failed; the next night's run tries again")

    async def _catch_up_soon(self) -> None:
        # The lease keeper must get back to renewing: run the catch-up beside it.
        self._spawn(self.catch_up())

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        for name, trigger in job_triggers(self.settings).items():
            self.scheduler.add_job(self.run_now, trigger, args=[name], id=name, name=name, replace_existing=True)
        self.scheduler.add_job(
            self.prune, CronTrigger(hour=RETENTION_HOUR, minute=RETENTION_MINUTE, timezone=self.settings.tz),
            id=RETENTION_JOB, name=RETENTION_JOB, replace_existing=True,
        )
        self.scheduler.start()
        self._spawn(self.keeper.run(self._stop))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop triggering, let a running job finish (waiting at most `grace` seconds), release the lease."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        # a job fired by APScheduler itself may still be running: wait for it to end
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                async with self._run_lock:
                    pass
