"""The weekly digest job: from DIGEST_WEEKDAY at DIGEST_TIME (city time), each reader who has not had
this ISO week's digest gets it: the text (split under Telegram's limit), the chart and the ledger.

Readers: city leaders and administrators (role admin, or a Telegram id in ADMIN_IDS) get the city's
digest, administrators with the people the bot cannot reach; county leaders get their county's.
The outbox key `digest:<person>:<ISO week>:0` (the first part) says whether a reader already has this
week's digest, so a run later in the week (the service was down on Monday, someone was invited on
Wednesday) catches up, and a second run queues nothing. Further parts are `…:1`, `…:2`; the chart
`…:chart`, the workbook `…:ledger`, all queued in the same transaction, in reading order.

Building a digest stores the figures of every scope (table `snapshots`), so next week's can show the
change. Files go under DATA_DIR/outbox/<date>/.

A chart or workbook that cannot be built (an odd county name, a full disk) stops nothing: it is logged
with its traceback, left out of the digests that would have carried it, and the administrators are told
once a week (key `digest_failed:<person>:<ISO week>:0`); every reader still gets the text.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.store import channels_for
from bot.domain.cycle import cycle_for
from bot.domain.lights import LightRules
from bot.domain.periods import at_local
from bot.domain.states import ProjectStatus, Role
from bot.ledger.io import export_ledger
from bot.services.bulletin import Bulletin, due_month, write_docx
from bot.services.bulletin import build as build_bulletin
from bot.services.chart import Bar, county_chart
from bot.services.digest import (
    CITY,
    Figures,
    LedgerData,
    county_scope,
    figures_for,
    gather,
    save_snapshot,
    unreachable_people,
)
from bot.store.models import Outbox, Person
from bot.store.outbox import channel_key, enqueue, outbox_key
from bot.telegram.split import split_html
from jobs.base import JobContext, JobResult
from jobs.channel_routing import queue_digests

log = logging.getLogger(__name__)
KIND = "digest"
FAILED = "digest_failed"
BULLETIN = "bulletin"  # the outbox kind of the month's bulletin; its key: bulletin:<person>:<month>:0
BULLETIN_WITHIN_DAYS = 7  # the digest within a week after a month's deadline carries its bulletin
LIST_LIMIT = 40  # projects per list in the text; the attached workbook has them all
# the chart's segments, left to right
STATUS_ORDER = (ProjectStatus.COMPLETED, ProjectStatus.STARTED, ProjectStatus.NOT_STARTED)


def iso_week(moment: dt.datetime, ctx: JobContext) -> str:
    year, week, _ = ctx.local(moment).isocalendar()
    return f"{year}-W{week:02d}"


def due_at(now: dt.datetime, ctx: JobContext) -> dt.datetime:
    """This ISO week's digest moment (DIGEST_WEEKDAY at DIGEST_TIME, city time)."""
    year, week, _ = ctx.local(now).isocalendar()
    day = dt.date.fromisocalendar(year, week, ctx.settings.digest_weekday + 1)
    return at_local(day, ctx.settings.digest_clock, ctx.tz)


@dataclass(frozen=True)
class Reader:
    person: Person
    county_id: int | None  # None: the city's digest
    admin: bool

    @property
    def scope(self) -> str:
        return CITY if self.county_id is None else county_scope(self.county_id)


async def readers(session: AsyncSession, ctx: JobContext) -> list[Reader]:
    admin_ids = set(ctx.settings.admin_ids)
    people = await session.scalars(
        select(Person).where(Person.telegram_id.is_not(None), Person.reachable.is_(True)).order_by(Person.id)
    )
    found = []
    for person in people:
        admin = person.role == Role.ADMIN or person.telegram_id in admin_ids
        if admin or person.role == Role.LEADER:
            found.append(Reader(person, None, admin))
        elif person.role == Role.COUNTY_LEADER and person.county_id is not None:
            found.append(Reader(person, person.county_id, False))
    return found


class _Build:
    """One run's figures and files, each made once and shared by the readers who need it."""

    def __init__(self, session: AsyncSession, ctx: JobContext, now: dt.datetime, data: LedgerData) -> None:
        self.session, self.ctx, self.now, self.data = session, ctx, now, data
        self.figures: dict[str, Figures] = {}
        self.files: dict[tuple[str, str, str], str | None] = {}  # None: it could not be built
        self.failed: list[tuple[str, Figures]] = []  # (chart | ledger, scope), in the order they failed
        self.folder = Path("outbox") / ctx.local(now).date().isoformat()
        self.monthly: Bulletin | None = None

    def of(self, county_id: int | None) -> Figures:
        scope = CITY if county_id is None else county_scope(county_id)
        if scope not in self.figures:
            self.figures[scope] = figures_for(self.data, county_id, self.ctx.tz)
        return self.figures[scope]

    async def snapshots(self) -> None:
        await save_snapshot(self.session, self.of(None), self.now)
        for county_id, _ in self.data.counties:
            await save_snapshot(self.session, self.of(county_id), self.now)

    async def _built(self, what: str, figures: Figures, lang: str) -> str | None:
        """The file's path under DATA_DIR, built once per scope and language; None when it failed."""
        key = (figures.scope, lang, what)
        if key not in self.files:
            try:
                self.files[key] = await (self._chart if what == "chart" else self._ledger)(figures, lang)
            except Exception:
                log.exception("digest: the %s of %s (%s) could not be built", what, figures.scope, lang)
                self.files[key] = None
                if (what, figures.scope) not in {(w, f.scope) for w, f in self.failed}:
                    self.failed.append((what, figures))
        return self.files[key]

    async def bulletin(self, month: str, lang: str) -> str | None:
        """The month's bulletin (bot.services.bulletin), built once a run and written once per language;
        None when it could not be built (the digest goes without it, and carries it next week)."""
        key = (month, lang, "bulletin")
        if key not in self.files:
            try:
                if self.monthly is None or self.monthly.month != month:
                    self.monthly = await build_bulletin(self.session, month, self.now, self.ctx.settings)
                relative = self.folder / f"bulletin-{month}-{lang}.docx"
                await asyncio.to_thread(write_docx, self.monthly, self.ctx.data_dir / relative, lang)
                self.files[key] = relative.as_posix()
            except Exception:
                log.exception("digest: the bulletin of %s (%s) could not be built", month, lang)
                self.files[key] = None
        return self.files[key]

    async def chart(self, figures: Figures, lang: str) -> str | None:
        return await self._built("chart", figures, lang)

    async def ledger(self, figures: Figures, lang: str) -> str | None:
        return await self._built("ledger", figures, lang)

    async def _chart(self, figures: Figures, lang: str) -> str:
        legend = [_plain(self.ctx.render(lang, "digest.chart_legend", code=c)) for c in STATUS_ORDER]
        bars = [Bar(r.name, r.totals.completed, r.totals.in_progress, r.totals.not_started,
                    highlight=r.county_id == figures.county_id) for r in figures.ranking]
        relative = self.folder / f"digest-{figures.scope.replace(':', '-')}-{lang}.png"
        await asyncio.to_thread(
            county_chart, bars, self.ctx.data_dir / relative,
            title=_plain(self.ctx.render(lang, "digest.chart_title", f=figures)),
            legend=(legend[0], legend[1], legend[2]), rate_label=_plain(self.ctx.render(lang, "digest.chart_rate")),
        )
        return relative.as_posix()

    async def _ledger(self, figures: Figures, lang: str) -> str:
        relative = self.folder / f"ledger-{figures.scope.replace(':', '-')}-{lang}.xlsx"
        target = self.ctx.data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        await export_ledger(self.session, target, county_id=figures.county_id, lang=lang)
        return relative.as_posix()


def bulletin_month(now: dt.datetime, ctx: JobContext) -> str | None:
    """The month whose bulletin goes with this week's digest: the first digest after the month's deadline."""
    due = due_at(now, ctx)
    month = due_month(due, ctx.settings)
    after = (ctx.local(due).date() - cycle_for(month, ctx.settings).deadline).days
    return month if 0 < after <= BULLETIN_WITHIN_DAYS else None


def _plain(text: str) -> str:
    """A rendered (HTML-escaped) text for a picture, where there is no HTML."""
    return html.unescape(text)


async def run(session: AsyncSession, now: dt.datetime, ctx: JobContext) -> JobResult:
    result = JobResult()
    cli = ctx.settings.default_language  # what the command line prints
    due = due_at(now, ctx)
    if now < due:
        result.add(ctx.render(cli, "cli_digest.not_due", due=ctx.local(due)))
        return result
    week = iso_week(now, ctx)
    everyone = await readers(session, ctx)
    first_keys = {r.person.id: outbox_key(KIND, r.person.id, week, 0) for r in everyone}
    channels = await channels_for(session, KIND)  # group robots and mailboxes (README "Channels")
    channel_keys = {c.id: channel_key(KIND, c.id, week, 0) for c in channels}
    done = set(await session.scalars(select(Outbox.key).where(
        Outbox.key.in_([*first_keys.values(), *channel_keys.values()]))))
    waiting = [r for r in everyone if first_keys[r.person.id] not in done]
    waiting_channels = [c for c in channels if channel_keys[c.id] not in done]
    if not waiting and not waiting_channels:
        result.add(ctx.render(cli, "cli_digest.all_queued", week=week))
        return result

    build = _Build(session, ctx, now, await gather(session, now, ctx.tz, LightRules.from_settings(ctx.settings)))
    await build.snapshots()
    names = build.data.county_names
    unreachable = await unreachable_people(session, names) if any(r.admin for r in waiting) else []
    send_at = ctx.send_after(now)
    deadline = cycle_for(build.data.period, ctx.settings).deadline
    month = bulletin_month(now, ctx)
    bulletin_keys = {r.person.id: outbox_key(BULLETIN, r.person.id, month, 0) for r in waiting
                     if month and r.county_id is None}
    has_bulletin = set(await session.scalars(select(Outbox.key).where(Outbox.key.in_(list(bulletin_keys.values())))))
    for reader in waiting:
        person, lang = reader.person, ctx.lang(reader.person)
        assert person.telegram_id is not None
        figures = build.of(reader.county_id)
        text = ctx.render(lang, "digest.digest", f=figures, limit=LIST_LIMIT, deadline=deadline,
                          unreachable=unreachable if reader.admin else None)
        messages: list[tuple[str | int, str, dict[str, Any]]] = [
            (index, "message", {"text": part, "reply_markup": None, "project_codes": []})
            for index, part in enumerate(split_html(text))
        ]
        parts = len(messages)
        if chart := await build.chart(figures, lang):
            messages.append(("chart", "photo", {"path": chart,
                                                "caption": ctx.render(lang, "digest.chart_caption", f=figures)}))
        if ledger := await build.ledger(figures, lang):
            messages.append(("ledger", "document", {"path": ledger,
                                                    "caption": ctx.render(lang, "digest.ledger_caption", f=figures),
                                                    "filename": _plain(ctx.render(lang, "digest.ledger_filename",
                                                                                  f=figures))}))
        keys = [outbox_key(KIND, person.id, week, step) for step, _, _ in messages]
        if (month and person.id in bulletin_keys and bulletin_keys[person.id] not in has_bulletin
                and (bulletin := await build.bulletin(month, lang))):
            messages.append(("bulletin", "document", {
                "path": bulletin, "caption": ctx.render(lang, "bulletin.caption", month=month),
                "filename": ctx.render(lang, "bulletin.filename", month=month)}))
            keys.append(bulletin_keys[person.id])  # once a month, whichever week's digest carried it
        for key, (step, method, payload) in zip(keys, messages, strict=True):
            if await enqueue(session, key=key, kind=BULLETIN if step == "bulletin" else KIND,
                             chat_id=person.telegram_id, person_id=person.id, payload=payload, method=method,
                             not_before=send_at):
                result.queued += 1
        result.add(ctx.render(cli, "cli_digest.queued", person=person.name or str(person.telegram_id),
                              scope=_plain(ctx.render(cli, "digest.scope", f=figures)), parts=parts))

    async def files(figures: Figures, lang: str) -> tuple[str | None, str | None]:
        return await build.chart(figures, lang), await build.ledger(figures, lang)

    result.queued += await queue_digests(session, waiting_channels, figures_of=build.of, files=files, week=week,
                                         lang=cli, limit=LIST_LIMIT, deadline=deadline, not_before=send_at)
    if build.failed:
        result.queued += await _tell_admins(session, ctx, everyone, build.failed, week, send_at)
    return result


async def _tell_admins(session: AsyncSession, ctx: JobContext, everyone: list[Reader],
                       failed: list[tuple[str, Figures]], week: str, send_at: dt.datetime) -> int:
    """One message a week to each administrator: which charts or workbooks the digest went without."""
    queued = 0
    for reader in everyone:
        if not reader.admin or reader.person.telegram_id is None:
            continue
        text = ctx.render(ctx.lang(reader.person), "digest.build_failed", failed=failed, week=week)
        if await enqueue(session, key=outbox_key(FAILED, reader.person.id, week, 0), kind=KIND,
                         chat_id=reader.person.telegram_id, person_id=reader.person.id,
                         payload={"text": text, "reply_markup": None, "project_codes": []}, not_before=send_at):
            queued += 1
    return queued


__all__ = ["KIND", "LIST_LIMIT", "Reader", "due_at", "iso_week", "readers", "run"]
