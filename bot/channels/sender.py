"""The channel sender: drains the outbox rows meant for group robots and mailboxes (`channel_id` set),
each once, in order per channel, at each robot's pace (README "Channels").

A channel's messages leave one at a time, oldest first: only the channel's oldest unsent row (the
head) is ever claimed, by the conditional UPDATE of bot.store.outbox.try_claim, so several instances
share the work without overtaking or doubling. Outcomes: sent → 'sent' and the channel's last
delivery; the robot's "too fast" (WeCom 45009, DingTalk 130101, Feishu 11232, HTTP 429) → given back
for the time it asks, not a failed attempt, and the channel paused; a bad key, signature or address →
'dead' with the robot's reason, the channel's last error, and one Telegram message to the admins
(key `channel_failed:<admin>:ch<channel>:0`, so once per channel); network errors and 5xx → backoff,
'dead' after SEND_MAX_ATTEMPTS. Nothing is sent during quiet hours."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.base import Delivery, Outcome, Target
from bot.channels.kinds import module
from bot.channels.pacing import RobotPace
from bot.channels.store import target_of
from bot.config import Settings
from bot.domain.clock import Clock, utcnow
from bot.domain.periods import in_quiet_hours, quiet_until
from bot.domain.states import OutboxState
from bot.store.lease import default_name
from bot.store.models import Channel, Outbox, Person
from bot.store.outbox import (
    claimable,
    enqueue_many,
    expired,
    outbox_key,
    outcome_values,
    row,
    settle,
    try_claim,
)
from bot.texts import LANGUAGES, render

log = logging.getLogger(__name__)
FAILED_KIND = "channel_failed"
CLAIM_SECONDS = 900.0  # a claim outlives the longest wait for a robot's window (a minute) plus a request


@dataclass
class Head:
    """A channel's oldest unsent row, claimed by this sender."""

    id: int
    method: str
    payload: dict[str, Any]
    attempts: int


class ChannelSender:
    """`run(stop)` for the service; `drain_once()` sends what is due now (tests, `channel test`)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        clock: Clock = utcnow,
        name: str | None = None,
        poll_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.sessionmaker, self.settings, self.clock = sessionmaker, settings, clock
        self.name = ((name or default_name()) + ":channels")[:64]
        self.poll_seconds, self.monotonic, self.sleep, self.wall = poll_seconds, monotonic, sleep, wall
        self.on_queued = on_queued  # admins were told something: the Telegram sender may send it now
        self.paces: dict[int, RobotPace] = {}
        self.busy: dict[int, asyncio.Task[int]] = {}
        self.stats: dict[str, int] = {}
        self._kicked = asyncio.Event()

    def kick(self) -> None:
        self._kicked.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep one task per channel with due messages until `stop` is set."""
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                self._kicked.clear()
                try:
                    await self._start_due(http)
                except Exception:  # the database away, or a bug: keep the service's sender alive
                    log.exception("channel sender: looking for due messages failed; trying again shortly")
                with contextlib.suppress(TimeoutError):
                    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._kicked.wait())]
                    try:
                        await asyncio.wait(waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for waiter in waits:
                            waiter.cancel()
            for task in self.busy.values():
                task.cancel()
            await asyncio.gather(*self.busy.values(), return_exceptions=True)

    async def drain_once(self) -> int:
        """Send everything due now, every channel at its pace; the number of messages sent."""
        async with aiohttp.ClientSession() as http:
            await self._start_due(http)
            results = await asyncio.gather(*self.busy.values())
        return sum(results)

    async def _start_due(self, http: aiohttp.ClientSession) -> None:
        self.busy = {cid: task for cid, task in self.busy.items() if not task.done()}
        now = self.clock()
        if in_quiet_hours(now, self.settings.quiet_window, self.settings.tz):
            return
        async with self.sessionmaker() as session:
            due = set(await session.scalars(
                select(Outbox.channel_id).where(Outbox.channel_id.is_not(None), claimable(now)).distinct()))
        for channel_id in sorted(due - set(self.busy)):
            self.busy[channel_id] = asyncio.create_task(self._drain_channel(channel_id, http),
                                                        name=f"qingshui-channel-{channel_id}")

    # ------------------------------------------------------------------ one channel

    async def _drain_channel(self, channel_id: int, http: aiohttp.ClientSession) -> int:
        async with self.sessionmaker() as session:
            channel = await session.get(Channel, channel_id)
            if channel is None:
                return 0
            target = target_of(channel)
        kind = module(target.kind)
        pace = await self._pace(target, kind.LIMITS)
        ctx = Delivery(http=http, data_dir=self.settings.data_dir, smtp_url=self.settings.smtp_url,
                       smtp_from=self.settings.smtp_from, wall=self.wall)
        sent = 0
        while True:
            head = await self._claim_head(channel_id)
            if head is None:
                return sent
            now = self.clock()
            if expired(head.payload, now):  # a month's reminder list past its deadline: never sent late
                await self._record(target, head, Outcome(OutboxState.EXPIRED, reason=OutboxState.EXPIRED.value))
                continue
            if in_quiet_hours(now, self.settings.quiet_window, self.settings.tz):
                await self._record(target, head, Outcome.retry_after(0, "quiet hours"),
                                   not_before=quiet_until(now, self.settings.quiet_window, self.settings.tz))
                return sent
            wait = pace.wait_time(self.monotonic())
            if wait > 0:
                await self.sleep(wait)
            try:
                outcome = await kind.deliver(target, head.method, head.payload, ctx)
            except asyncio.CancelledError:
                await asyncio.shield(self._record(target, head, Outcome.retry_after(0, "stopping")))
                raise
            except Exception as exc:  # a bug or a missing file: an attempt, so the row cannot loop forever
                log.exception("channel %s: sending outbox row %s failed", target.name, head.id)
                outcome = Outcome.retry(repr(exc))
            if outcome.state in ("sent", "wait") or outcome.reason.startswith("HTTP"):
                pace.record(self.monotonic())  # the robot saw it, whatever it answered
            if outcome.state == "wait":
                pace.pause(self.monotonic() + outcome.seconds)
                log.warning("channel %s: robot says too fast (%s): waiting %s s", target.name, outcome.reason,
                            outcome.seconds)
            await self._record(target, head, outcome)
            self.stats[outcome.state] = self.stats.get(outcome.state, 0) + 1
            if outcome.state == "sent":
                sent += 1
            elif outcome.state != "dead":
                return sent  # the head waits (too fast, or backing off): the rest keep their order behind it

    async def _pace(self, target: Target, limits: tuple[tuple[int, float], ...]) -> RobotPace:
        """The channel's pace, read again from the outbox's recent `sent_at` each time this sender takes
        the channel up: another instance may have sent to it meanwhile."""
        pace = RobotPace(limits)
        if target.id in self.paces:
            pace.pause(self.paces[target.id].paused_until)
        now, mono = self.clock(), self.monotonic()
        async with self.sessionmaker() as session:
            recent = await session.scalars(
                select(Outbox.sent_at).where(Outbox.channel_id == target.id, Outbox.state == OutboxState.SENT,
                                             Outbox.sent_at > now - dt.timedelta(seconds=pace.longest)))
            pace.seed(mono - (now - at).total_seconds() for at in recent if at is not None)
        self.paces[target.id] = pace
        return pace

    async def _claim_head(self, channel_id: int) -> Head | None:
        now = self.clock()
        async with self.sessionmaker() as session:
            head_id = await session.scalar(
                select(Outbox.id)
                .where(Outbox.channel_id == channel_id, Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING)))
                .order_by(Outbox.id).limit(1))
            if head_id is None or not await try_claim(session, head_id, self.name, now,
                                                      now + dt.timedelta(seconds=CLAIM_SECONDS)):
                return None
            await session.commit()
            claimed = await session.get(Outbox, head_id)
            assert claimed is not None
            return Head(claimed.id, claimed.method, dict(claimed.payload or {}), claimed.attempts)

    async def _record(self, target: Target, head: Head, outcome: Outcome,
                      not_before: dt.datetime | None = None) -> None:
        now = self.clock()
        state = {"wait": "release"}.get(outcome.state, outcome.state)
        if outcome.state == "wait" and not_before is None:
            not_before = now + dt.timedelta(seconds=outcome.seconds)
        values = outcome_values(state, now=now, attempts=head.attempts, max_attempts=self.settings.send_max_attempts,
                                error=outcome.reason, not_before=not_before)
        if outcome.state == "wait" and outcome.seconds > 0:
            values["last_error"] = outcome.reason[:2000]  # why it waits, shown by `channel list`
        told = False
        try:
            async with self.sessionmaker() as session:
                await settle(session, head.id, self.name, values)
                if outcome.state == "sent":
                    changes: dict[str, Any] = {"last_ok_at": now}
                elif outcome.state in ("dead", "retry") or outcome.seconds > 0:
                    changes = {"last_error": outcome.reason[:2000], "last_error_at": now}
                else:
                    changes = {}
                if changes:
                    await session.execute(update(Channel).where(Channel.id == target.id).values(**changes)
                                          .execution_options(synchronize_session=False))
                if outcome.state == "dead" and outcome.tell_admins:
                    told = await self._tell_admins(session, target, outcome.reason, now) > 0
                await session.commit()
        except SQLAlchemyError:
            log.exception("channel %s: could not record outbox row %s as %s", target.name, head.id, outcome.state)
            return
        if told and self.on_queued is not None:
            self.on_queued()

    async def _tell_admins(self, session: AsyncSession, target: Target, reason: str, now: dt.datetime) -> int:
        """One Telegram message per admin, once per channel: its settings are wrong."""
        admin_ids = set(self.settings.admin_ids)
        people = await session.scalars(select(Person).where(Person.telegram_id.is_not(None),
                                                            Person.reachable.is_(True)).order_by(Person.id))
        rows = []
        for person in people:
            if person.role != "admin" and person.telegram_id not in admin_ids:
                continue
            assert person.telegram_id is not None
            lang = person.language if person.language in LANGUAGES else self.settings.default_language
            text = render(lang, "channels.failed", channel=target.name, robot=target.kind, reason=reason[:300])
            key = outbox_key(FAILED_KIND, person.id, f"ch{target.id}", 0)
            rows.append(row(key=key, kind=FAILED_KIND, chat_id=person.telegram_id, person_id=person.id,
                            payload={"text": text, "reply_markup": None}, not_before=now))
        return await enqueue_many(session, rows) if rows else 0
