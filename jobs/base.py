"""What every scheduled job shares: its context in, its result out.

A job is `async def run(session: AsyncSession, now: datetime, ctx: JobContext) -> JobResult`.
It asks the database what is due at `now` (an aware datetime) and queues notifications with
bot.store.outbox.enqueue under stable keys, so running it twice for the same moment queues nothing new.
A job does not commit: the runner (jobs.registry.run_job) commits the job's outbox rows together
with its JobRun record, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.periods import quiet_until
from bot.store.models import Person
from bot.texts import LANGUAGES, Texts


@dataclass(frozen=True)
class JobContext:
    """Settings and helpers a job needs besides the session and the clock."""

    settings: Settings
    texts: Texts
    data_dir: Path
    tz: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> JobContext:
        return cls(
            settings=settings,
            texts=Texts(settings.default_language),
            data_dir=settings.data_dir,
            tz=settings.tz,
        )

    def lang(self, person: Person | None) -> str:
        """The language to write to `person` in (theirs if known, else the default)."""
        if person is not None and person.language in LANGUAGES:
            return person.language
        return self.settings.default_language

    def render(self, lang: str | None, text: str, /, **context: Any) -> str:
        """A text (`file.macro`) in `lang`, see bot.texts.render. Macro arguments cannot be called
        `name` or `lang` (bot.texts.render's own parameters): use e.g. `person`, `job`, `project`."""
        return self.texts(lang, text, **context)

    def send_after(self, now: dt.datetime) -> dt.datetime:
        """`now`, or the end of quiet hours when `now` falls in them: the outbox row's not_before."""
        return quiet_until(now, self.settings.quiet_window, self.tz)

    def local(self, now: dt.datetime) -> dt.datetime:
        return now.astimezone(self.tz)


@dataclass
class JobResult:
    """How many notifications a run queued (new outbox rows) and one line per notable thing."""

    queued: int = 0
    details: list[str] = field(default_factory=list)

    def add(self, detail: str, *, queued: bool = False) -> None:
        """Record one line; `queued=True` also counts one newly queued notification."""
        self.details.append(detail)
        if queued:
            self.queued += 1

    def summary(self) -> str:
        return f"queued {self.queued}" + (f": {'; '.join(self.details)}" if self.details else "")


JobFunction = Callable[[AsyncSession, dt.datetime, JobContext], Awaitable[JobResult]]

__all__ = ["JobContext", "JobFunction", "JobResult"]
