"""The simulated month: the clock, the events in time order (the story's visits, the scheduler's own
trigger moments), the real bot answering each one and the real Sender draining the outbox, and the
timeline of everything sent and received. bot.demo.runner sets it up and reads the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram, SentRecord
from bot.demo.story import (
    ACTION_GAP,
    FIRST_DAY,
    VISITS,
    Action,
    Photo,
    Say,
    Tap,
    TapReminder,
    contact_id,
)
from bot.domain.periods import at_local
from bot.store.models import Outbox
from bot.telegram.callbacks import ProjectAction

log = logging.getLogger(__name__)

SETTLE_SECONDS = 15.0  # longest the bot may take to answer one simulated action
SHOWN = frozenset({"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageCaption"})


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
                self._due = await session.scalar(select(func.min(Outbox.not_before)).where(Outbox.state == "pending"))
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
                .where(Outbox.state == "sent"))
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
