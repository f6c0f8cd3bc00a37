"""The offline demo: the whole service on the sample ledger through one simulated month.

Everything is the real thing except Telegram and the clock:
- a fresh SQLite database under OUT/data (never the user's DATA_DIR database), migrated as usual, with
  the sample ledger imported as of 1 November 2026 and the people of bot.demo.story bound through
  the real invites (bot.services.people.create_invite + redeem);
- the fake Bot API (bot.demo.fake_telegram) on 127.0.0.1, recording every message, picture and file the
  bot sends into OUT/messages; the real application (bot.telegram.app.build_app: the Dispatcher with its
  middlewares and routers) polls it, and the simulated contacts write to it and press its buttons;
- the jobs run through bot.scheduler.run_job at every moment the scheduler's own triggers
  (bot.scheduler.job_triggers) fire in November, and the real Sender drains the outbox whenever a
  row is due, so quiet hours, follow-ups and escalation steps happen exactly as in the service;
- one simulated clock (UTC) is read by the handlers, the jobs and the sender alike; it only jumps
  forward, to the next moment something is due.

No BOT_TOKEN is read (a dummy token talks to the fake) and nothing leaves the machine.

Over ~400 lines on purpose: the simulated month (clock, events, the bot answering, the sender) and the
outcome it reports are one story, read in order."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram, Rejection, SentRecord
from bot.demo.story import (
    ACTION_GAP,
    FIRST_DAY,
    LAST_DAY,
    VISITS,
    Action,
    Cast,
    Photo,
    Say,
    Tap,
    TapReminder,
    cast,
    contact_id,
)
from bot.domain.periods import at_local
from bot.domain.rates import Totals
from bot.domain.states import OutboxState
from bot.errors import UserError
from bot.ledger.io import import_sample
from bot.ledger.queries import city_figures
from bot.services.people import create_invite, redeem
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import County, Outbox, Report
from bot.telegram.callbacks import ProjectAction
from bot.texts import render

log = logging.getLogger(__name__)

DEMO_TOKEN = "123456:DEMO"  # the fake accepts any token; BOT_TOKEN is never read
MARKER = ".qingshui-demo"  # marks a folder the demo made, so a second run may clear it
SETTLE_SECONDS = 15.0  # longest the bot may take to answer one simulated action
SHOWN = frozenset({"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageCaption"})
_SEQ = re.compile(r"^(\d+)_")


class SimClock:
    """The simulated 'now' (aware UTC) everything reads; it moves only forward."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def move_to(self, moment: dt.datetime) -> None:
        self.now = max(self.now, moment)


@dataclass
class Entry:
    """One line of the timeline: a message the bot sent (`incoming` False) or one a person sent it."""

    at: dt.datetime
    chat_id: int
    incoming: bool
    kind: str  # out: reminder|followup|alert|resolved|digest|chart|ledger|reply|edit; in: say|photo|tap
    text: str
    step: str = ""
    method: str = ""
    message_id: int | None = None
    seq: int | None = None  # the fake's record number: its files in OUT/messages start with it
    attachment: str | None = None  # a picture's or document's own file name, as the recipient sees it
    buttons: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    out: Path
    index: Path
    people: list[Cast]
    entries: list[Entry]
    before: Totals
    after: Totals
    reports: int
    reporters: int
    rejected: list[Rejection]
    undelivered: list[str]  # outbox rows not sent by the end: "key: reason"
    errors: list[str]  # ERROR log lines (a handler or job failed)
    seconds: float
    loose: list[str]  # files in OUT/messages that belong to no timeline entry (the fake's own index page)

    def counts(self) -> Counter[str]:
        """Messages the bot sent, per kind; alerts also per step (alert:1 … alert:red)."""
        counted: Counter[str] = Counter()
        for e in self.entries:
            if e.incoming:
                continue
            counted[e.kind] += 1
            if e.kind == "alert":
                counted[f"alert:{e.step}"] += 1
            if e.kind == "digest" and e.step == "0":
                counted["digest:readers"] += 1
        return counted

    @property
    def ok(self) -> bool:
        return not (self.rejected or self.undelivered or self.errors)


def prepare_out(out: Path, lang: str) -> Path:
    """Clear `out` for a new run (returned resolved); refuse a non-empty folder the demo did not make."""
    out = out.resolve()
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise UserError(render(lang, "cli_demo.not_demo_folder", path=str(out)))
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by `qingshui demo`; cleared by its next run\n", encoding="utf-8")
    return out


def demo_settings(settings: Settings, out: Path, api_url: str) -> Settings:
    """The user's settings (language, time zone, cycle, thresholds, quiet hours) on the demo's own
    database and files, talking to the fake Bot API; the fake sets no limits, so the sender is not paced."""
    data_dir = (out / "data").resolve()
    return settings.model_copy(update={
        "bot_token": SecretStr(DEMO_TOKEN),
        "bot_username": None,
        "telegram_api_url": api_url,
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'qingshui.db'}",
        "redis_url": None,
        "webhook_url": None,
        "webhook_secret": None,
        "admin_ids": (),
        "data_dir": data_dir,
        "send_rate_global": 1000.0,
        "send_rate_per_chat": 1000.0,
        "send_rate_per_group_minute": 1000.0,
    })


def job_moments(settings: Settings, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """Every moment in [start, end) at which the service's scheduler would run a job, and the job."""
    from bot.scheduler import job_triggers  # imports the jobs: only when a demo runs

    moments: list[tuple[dt.datetime, str]] = []
    for name, trigger in job_triggers(settings).items():
        after = start.astimezone(settings.tz)
        while True:
            fire = trigger.get_next_fire_time(None, after)
            if fire is None or fire >= end:
                break
            moments.append((fire.astimezone(dt.UTC), name))
            after = fire + dt.timedelta(seconds=1)
    return sorted(moments)


class _ErrorLog(logging.Handler):
    """Collects ERROR lines logged while the demo runs: any of them makes the run fail."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


async def enrol(sessionmaker: async_sessionmaker[AsyncSession], people: list[Cast], now: dt.datetime,
                lang: str) -> None:
    """Bind everyone as the service does: an invite per person, redeemed by their Telegram id."""
    async with sessionmaker() as session:
        counties = {c.name: c for c in await session.scalars(select(County))}
        for person in people:
            county = counties[person.county] if person.county else None
            code, _ = await create_invite(session, role=person.role, county=county, name=person.name,
                                          ttl=dt.timedelta(days=7), now=now)
            await redeem(session, code, telegram_id=person.telegram_id, telegram_name=person.name, language=lang,
                         now=now)


class Simulation:
    """One simulated month: the events in time order, the bot answering, the sender sending."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], fake: FakeTelegram,
                 clock: SimClock) -> None:
        from bot.scheduler import JobContext
        from bot.telegram.app import build_app  # aiogram and the handlers: only when a demo runs
        from bot.telegram.sender import Sender

        self.settings, self.sessionmaker, self.fake, self.clock = settings, sessionmaker, fake, clock
        self.app = build_app(settings, sessionmaker, clock=clock)
        self.sender = Sender(self.app.bot, sessionmaker, settings, clock=clock, name="demo", poll_seconds=0.1,
                             pacer=self.app.pacer)
        self.ctx = JobContext.from_settings(settings)
        self.entries: list[Entry] = []
        self._seen = 0  # fake.sent records already put on the timeline
        self._due: dt.datetime | None = None  # the earliest pending outbox row, when known
        self._due_known = False  # forgotten whenever a job, an action or the sender may have changed it

    # ------------------------------------------------------------------ the month

    async def run(self, start: dt.datetime, end: dt.datetime) -> None:
        stop = asyncio.Event()
        await self.app.set_commands()
        serving = asyncio.create_task(self.app.serve(stop), name="demo-bot")
        try:
            await self._polling_started(serving)
            for moment, _, action in self._events(start, end):
                await self._advance(moment)
                await action()
                self._due_known = False
                await self._drain_due()
            await self._advance(end)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(serving, SETTLE_SECONDS)
            await self.app.close()
        await self._label_outbox_messages()

    def _events(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, int, Callable[[], Any]]]:
        events: list[tuple[dt.datetime, int, Callable[[], Any]]] = []
        for moment, name in job_moments(self.settings, start, end):
            events.append((moment, len(events), lambda name=name: self._run_job(name)))
        for visit in VISITS:
            day = FIRST_DAY.replace(day=visit.day)
            moment = at_local(day, visit.time, self.settings.tz)
            chat = contact_id(visit.county)
            for offset, act in enumerate(visit.actions):
                at = moment + offset * ACTION_GAP
                events.append((at, len(events), lambda chat=chat, act=act: self._act(chat, act)))
        return sorted(events, key=lambda e: (e[0], e[1]))

    async def _polling_started(self, serving: asyncio.Task[None]) -> None:
        deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
        while not self.fake.method_calls["getUpdates"]:
            if serving.done():
                serving.result()  # the bot failed to start: say why
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the demo bot did not start polling the fake Bot API")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ jobs and the sender

    async def _run_job(self, name: str) -> None:
        from bot.scheduler import run_job

        try:
            async with self.sessionmaker() as session:
                result = await run_job(session, name, self.clock(), self.ctx)
        except Exception:  # as the scheduler does: logged (and counted as an error), the month goes on
            log.exception("job %s failed at %s", name, self.clock().isoformat())
            return
        if result.queued:
            log.debug("job %s at %s: %s", name, self.clock().isoformat(), result.summary())

    async def _next_due(self) -> dt.datetime | None:
        if not self._due_known:
            async with self.sessionmaker() as session:
                self._due = await session.scalar(
                    select(func.min(Outbox.not_before)).where(Outbox.state == OutboxState.PENDING))
            self._due_known = True
        return self._due

    async def _send(self) -> int:
        sent = await self.sender.drain_once()
        self._due_known = False
        self._collect()
        return sent

    async def _drain_due(self) -> None:
        due = await self._next_due()
        if due is not None and due <= self.clock():
            await self._send()

    async def _advance(self, moment: dt.datetime) -> None:
        """Move the clock to `moment`, sending on the way whatever falls due before it."""
        while True:
            due = await self._next_due()
            if due is None or due > moment:
                break
            self.clock.move_to(due)
            sent = await self._send()
            if not sent and await self._next_due() == due:
                break  # nothing can go now (quiet hours the sender itself enforces): go on
        self.clock.move_to(moment)

    # ------------------------------------------------------------------ the contacts

    async def _act(self, chat: int, action: Action) -> None:
        mark = len(self.fake.sent)
        if isinstance(action, Say):
            self.fake.send_text(chat, action.text)
            self._note_in(chat, "say", action.text)
        elif isinstance(action, Photo):
            self.fake.send_photo(chat, caption=action.caption)
            self._note_in(chat, "photo", action.caption or "")
        else:
            if isinstance(action, TapReminder):
                await self._label_outbox_messages()  # which of the chat's messages are reminders
            message_id, data, label = self._button(chat, action)
            self.fake.press(chat, message_id, data)
            self._note_in(chat, "tap", label, message_id=message_id)
        await self._settle(chat, mark)

    def _button(self, chat: int, action: Tap | TapReminder) -> tuple[int, str, str]:
        """The newest message in `chat` showing the button asked for (as it looks now, after edits)."""
        if isinstance(action, TapReminder):
            wanted = ProjectAction.__prefix__ + ProjectAction.__separator__ + "report"
            reminders = {e.message_id for e in self.entries if e.chat_id == chat and not e.incoming
                         and e.kind in ("reminder", "followup")}

            def matches(message_id: int, data: str, label: str) -> bool:  # the label is "📝 CODE name"
                return message_id in reminders and data.startswith(wanted) and action.code in label.split()
        else:
            def matches(message_id: int, data: str, label: str) -> bool:
                return data.startswith(action.data) and action.label in label

        for record in reversed(self.fake.messages_to(chat)):
            message = self.fake.message(chat, record.message_id or 0) or {}
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data") or ""
                    if data and matches(record.message_id or 0, data, button.get("text", "")):
                        return record.message_id or 0, data, button.get("text", "")
        raise RuntimeError(f"demo script: no button {action} in chat {chat}\n{self.fake.log_tail()}")

    async def _settle(self, chat: int, mark: int) -> None:
        """Wait until the bot has answered the action and finished handling every update."""
        await self.fake.wait_for(lambda r: r.chat_id == chat or r.method == "answerCallbackQuery",
                                 since=mark, timeout=SETTLE_SECONDS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        quiet = 0
        while quiet < 3:  # idle for a few loop turns in a row: nothing left in flight
            busy = self.fake.pending_updates or self.app.inflight.active
            quiet = 0 if busy else quiet + 1
            if loop.time() > deadline:
                raise RuntimeError(f"the bot is still busy after {SETTLE_SECONDS} s\n{self.fake.log_tail()}")
            await asyncio.sleep(0.005)
        self._collect()

    def _note_in(self, chat: int, kind: str, text: str, *, message_id: int | None = None) -> None:
        self.entries.append(Entry(at=self.clock(), chat_id=chat, incoming=True, kind=kind, text=text,
                                  message_id=message_id))

    # ------------------------------------------------------------------ the timeline

    def _collect(self) -> None:
        """Put what the bot sent since the last look on the timeline, at the simulated moment."""
        for record in self.fake.sent[self._seen:]:
            if record.method in SHOWN:
                self.entries.append(_entry(record, self.clock()))
        self._seen = len(self.fake.sent)

    async def _label_outbox_messages(self) -> None:
        """Messages that went through the outbox take its kind and step; the rest are chat replies."""
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Outbox.chat_id, Outbox.message_id, Outbox.kind, Outbox.key, Outbox.method)
                .where(Outbox.state == OutboxState.SENT))
            by_message = {(chat, mid): (kind, key, method) for chat, mid, kind, key, method in rows}
        for e in self.entries:
            if e.incoming or e.method.startswith("edit"):
                continue
            found = by_message.get((e.chat_id, e.message_id))
            if found is not None:
                e.kind, e.step = _outbox_kind(*found)


def _entry(record: SentRecord, at: dt.datetime) -> Entry:
    buttons = [b.get("text", "") for row in (record.reply_markup or {}).get("inline_keyboard", []) for b in row]
    kind = "edit" if record.method.startswith("edit") else "reply"
    return Entry(at=at, chat_id=record.chat_id or 0, incoming=False, kind=kind, text=record.text or "",
                 method=record.method, message_id=record.message_id, seq=record.seq, buttons=buttons,
                 attachment=record.file_name)


def _outbox_kind(kind: str, key: str, method: str) -> tuple[str, str]:
    """(timeline kind, step) of a sent outbox row: reminders split from follow-ups by their step, the
    digest's picture and workbook named as such."""
    step = key.rsplit(":", 1)[-1]
    if kind == "reminder":
        return ("reminder" if step == "0" else "followup"), step
    if kind == "digest" and method == "photo":
        return "chart", step
    if kind == "digest" and method == "document":
        return "ledger", step
    return kind, step


def attach_files(entries: list[Entry], messages_dir: Path) -> list[str]:
    """Give each sent entry its files in OUT/messages (named after the fake's record number); returns the
    files no entry claims (the fake's own index page)."""
    by_seq: dict[int, list[str]] = {}
    loose: list[str] = []
    for path in sorted(messages_dir.iterdir()) if messages_dir.is_dir() else []:
        match = _SEQ.match(path.name)
        if match:
            by_seq.setdefault(int(match.group(1)), []).append(path.name)
        else:
            loose.append(path.name)
    claimed: set[int] = set()
    for e in entries:
        if e.seq is not None and e.seq in by_seq:
            e.files = by_seq[e.seq]
            claimed.add(e.seq)
    loose += [name for seq, names in sorted(by_seq.items()) if seq not in claimed for name in names]
    return loose


async def _rates(sessionmaker: async_sessionmaker[AsyncSession]) -> Totals:
    async with sessionmaker() as session:
        return await city_figures(session)


async def _outcome(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, list[str]]:
    """Reports saved, people who reported, and outbox rows that were not sent."""
    async with sessionmaker() as session:
        counting = Report.kind.in_(("progress", "no_change"))
        reports = await session.scalar(select(func.count(Report.id)).where(counting)) or 0
        reporters = await session.scalar(select(func.count(func.distinct(Report.person_id))).where(counting)) or 0
        unsent = await session.execute(select(Outbox.key, Outbox.state, Outbox.last_error)
                                       .where(Outbox.state != OutboxState.SENT).order_by(Outbox.id))
        undelivered = [f"{key}: {state} {error}".strip() for key, state, error in unsent]
    return int(reports), int(reporters), undelivered


async def run_demo(settings: Settings, out: Path) -> DemoResult:
    """Simulate November 2026 into `out` (cleared first) and say what happened; bot.demo.output writes
    the index page from the result."""
    started = time.monotonic()
    lang = settings.default_language
    out = prepare_out(out, lang)
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        async with FakeTelegram(record_dir=out / "messages") as fake:
            demo = demo_settings(settings, out, fake.base_url)
            people = cast()
            for person in people:
                fake.user(person.telegram_id, person.name, language_code="zh-hans" if lang == "zh" else "en")
            tz = demo.tz
            start = at_local(FIRST_DAY, dt.time(0, 0), tz)
            end = at_local(LAST_DAY + dt.timedelta(days=1), dt.time(0, 0), tz)
            await migrate(demo.db_url)
            engine = make_engine(demo.db_url)
            try:
                sessionmaker = make_sessionmaker(engine)
                clock = SimClock(start)
                await import_sample(sessionmaker, now=start, tz=tz)
                await enrol(sessionmaker, people, start, lang)
                before = await _rates(sessionmaker)
                simulation = Simulation(demo, sessionmaker, fake, clock)
                await simulation.run(start, end)
                after = await _rates(sessionmaker)
                reports, reporters, undelivered = await _outcome(sessionmaker)
            finally:
                await engine.dispose()
            rejected = list(fake.rejected)
    finally:
        logging.getLogger().removeHandler(errors)
    entries = sorted(simulation.entries, key=lambda e: (e.at, e.seq if e.seq is not None else -1))
    loose = attach_files(entries, out / "messages")
    return DemoResult(out=out, index=out / "index.html", people=people, entries=entries, before=before,
                      after=after, reports=reports, reporters=reporters, rejected=rejected, undelivered=undelivered,
                      errors=errors.lines, seconds=time.monotonic() - started, loose=loose)


__all__ = ["DemoResult", "Entry", "SimClock", "demo_settings", "job_moments", "prepare_out", "run_demo"]
