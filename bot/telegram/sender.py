"""The sender: drains the outbox to Telegram, paced under its limits, each message once.

Claims. A row is claimed by one conditional UPDATE
(`… SET state='sending', claimed_by=me, claimed_until=t, attempts=attempts+1
   WHERE id=? AND (state='pending' AND not_before<=now OR state='sending' AND claimed_until<now)`)
and only a rowcount of 1 makes it ours, which is atomic on SQLite and PostgreSQL alike, so several
senders (processes) can drain one outbox. A sender that dies leaves its rows 'sending'; they are
claimed again once `claimed_until` passes, so a crash loses nothing and doubles at most the
message that was in flight (Telegram has no idempotency key).

Outcomes. Sent → 'sent' with sent_at and message_id. 429 → wait retry_after (everything waits when
it is the overall flood limit) and try again; not a failed attempt. 403 → the person is marked
unreachable and all their queued messages die with reason 'unreachable' (as do later ones).
400 → 'dead' with Telegram's reason. Network errors, timeouts, 5xx → retried after an exponential
backoff, 'dead' after SEND_MAX_ATTEMPTS. Nothing is sent during quiet hours. A row past its expiry
(bot.store.outbox) → 'expired', never sent.

Pacing is per process (bot.telegram.pacing); senders sharing one outbox split SEND_RATE_GLOBAL between
them (bot.telegram.pacing.rate_share), counting each other through a presence lease (`sender:<name>`) that
each renews; a sender joining others waits until they have slowed down to their new share.

Over ~400 lines on purpose: one Sender whose claim, send and outcome steps share the claim and the rate
share it holds; the pacing it uses is already apart (bot.telegram.pacing, bot.telegram.answer_pacing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, InlineKeyboardMarkup
from pydantic import ValidationError
from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.clock import Clock, utcnow
from bot.domain.periods import in_quiet_hours, quiet_until
from bot.domain.states import OutboxState
from bot.store.lease import default_name, forget_expired, live_names, try_acquire
from bot.store.models import Lease, Outbox, Person
from bot.store.outbox import backoff_seconds as backoff_seconds  # re-exported: tests and README name it here
from bot.store.outbox import claimable, expired, outcome_values, settle, try_claim
from bot.telegram.answer_pacing import paced_by_caller
from bot.telegram.pacing import Pacer, pacer_for, rate_share

log = logging.getLogger(__name__)


UNREACHABLE = "unreachable"
PRESENCE_PREFIX = "sender:"
PRESENCE_SECONDS = 30.0  # a sender unheard of for this long no longer takes a share of the rate
PRESENCE_RENEW_SECONDS = 5.0
SHARE_CHECK_SECONDS = 0.5  # how often a sender recounts the others and adjusts its share
# A sender joining others waits until they have recounted and their last second's sends have aged out.
JOIN_WAIT_SECONDS = SHARE_CHECK_SECONDS + 1.0
# A sender whose share grows (another one left) takes it only after this: the other's last second of sends
# still counts in Telegram's window (bench/fanout.py saw a 429 at the end of a two-sender wave without it).
GROW_WAIT_SECONDS = 1.0
RETRY_IN_PLACE_SECONDS = 10  # a shorter retry_after is waited out holding the claim; a longer one releases it
UNAUTHORIZED_PAUSE_SECONDS = 60.0  # a revoked token: stop sending, burn no attempts, log loudly


@dataclass
class Claimed:
    """An outbox row this sender holds, detached from any session."""

    id: int
    chat_id: int
    person_id: int | None
    method: str
    payload: dict[str, Any]
    attempts: int
    claimed_at: float  # monotonic


@dataclass
class _Outcome:
    state: str  # sent | release | retry | dead | unreachable | migrated | expired
    message_id: int | None = None
    error: str = ""
    not_before: dt.datetime | None = None
    new_chat_id: int | None = None






class Sender:
    """Drains the outbox. `run(stop)` for the service; `drain_once()` sends what is due now (tests)."""

    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        clock: Clock = utcnow,
        name: str | None = None,
        poll_seconds: float = 2.0,
        request_timeout: float = 30.0,
        batch_size: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.name = (name or default_name())[:64]
        self.poll_seconds = poll_seconds
        self.request_timeout = request_timeout
        self.monotonic = monotonic
        # the service shares one Pacer with the bot's direct answers (bot.telegram.answer_pacing)
        self.pacer = pacer or pacer_for(settings, monotonic=monotonic)
        self.batch_size = batch_size  # None: follow the pace (see _batch)
        # a claim outlives the longest it may wait for its turn plus one request, with room to spare
        self.claim_seconds = max(120.0, 4 * request_timeout)
        self.stats: Counter[str] = Counter()
        self._kicked = asyncio.Event()
        self._stopping = False
        self._unreachable_chats: set[int] = set()
        self._share_checked = -float("inf")
        self._presence_renewed = -float("inf")
        self._joined = False
        self._share: float | None = None  # the overall rate this sender uses (None: not yet counted)
        self._grow_at: float | None = None  # when a larger share may be taken

    # ------------------------------------------------------------------ loop

    def kick(self) -> None:
        """Something was queued: drain now instead of at the next poll."""
        self._kicked.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; wakes on kick() and every poll interval."""
        log.info("sender %s started", self.name)
        try:
            while not stop.is_set():
                # cleared before draining, so a kick that comes while draining is not lost
                self._kicked.clear()
                try:
                    await self.drain_once(stop)
                except Exception:  # the database away, or a bug: keep the service's sender alive
                    log.exception("sender %s: draining failed; trying again shortly", self.name)
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._kicked.wait())]
                try:
                    await asyncio.wait(waits, timeout=self._idle_seconds(), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits:
                        waiter.cancel()
        finally:
            await self._leave()
            log.info("sender %s stopped (%s)", self.name, dict(self.stats))

    def _idle_seconds(self) -> float:
        paused = self.pacer.paused_for()
        return max(self.poll_seconds, min(paused, 60.0))

    def _quiet(self, now: dt.datetime) -> bool:
        return in_quiet_hours(now, self.settings.quiet_window, self.settings.tz)

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Send everything due now (claiming in batches); the number of messages sent."""
        if self._quiet(self.clock()) or not await self._anything_due():
            return 0
        sent = 0
        in_flight: set[asyncio.Task[bool]] = set()
        try:
            while True:
                stopping = stop is not None and stop.is_set()
                if not stopping:
                    await self._share_rate()
                batch = self._batch()
                room = 2 * batch - len(in_flight)  # about two seconds' worth held at a time, no more
                want = min(room, batch)
                got_all = False
                if not stopping and want > 0 and (room >= batch or not in_flight):
                    rows = await self._claim(want)
                    got_all = len(rows) == want
                    in_flight.update(asyncio.create_task(self._deliver(row)) for row in rows)
                if not in_flight:
                    break
                if got_all and len(in_flight) < 2 * batch:
                    continue
                done, in_flight_left = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight = set(in_flight_left)
                sent += sum(1 for task in done if task.result())
        finally:
            if in_flight:  # cancelled (service stopping): rows not yet sent are given back
                for task in in_flight:
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)
            await self._leave()  # nothing left for this sender: the others may use the whole rate
        self.pacer.forget_idle_chats()
        return sent

    def _batch(self) -> int:
        """Rows claimed at a time: about one second of this sender's share."""
        return self.batch_size or max(1, min(50, self.pacer.global_window.count))

    async def _anything_due(self) -> bool:
        now = self.clock()
        async with self.sessionmaker() as session:
            return await session.scalar(select(Outbox.id).where(self._claimable(now)).limit(1)) is not None

    # ------------------------------------------------------------------ presence and rate share

    async def _share_rate(self) -> None:
        """Renew this sender's presence and take its share of the overall rate (at most once a second)."""
        started = self.monotonic()
        if started - self._share_checked < SHARE_CHECK_SECONDS:
            return
        now = self.clock()
        async with self.sessionmaker() as session:
            if started - self._presence_renewed >= PRESENCE_RENEW_SECONDS:
                await try_acquire(session, PRESENCE_PREFIX + self.name, self.name, now, PRESENCE_SECONDS)
                await forget_expired(session, PRESENCE_PREFIX, now, grace=PRESENCE_SECONDS * 10)
                self._presence_renewed = started
            senders = await live_names(session, PRESENCE_PREFIX, now)
        self._share_checked = started
        share = rate_share(self.settings.send_rate_global, senders, PRESENCE_PREFIX + self.name)
        self.pacer.set_global_rate(self._settled_share(share, started))
        if not self._joined:
            self._joined = True
            if len(senders) > 1:
                log.info("sender %s joins %s others: waiting for them to slow down", self.name, len(senders) - 1)
                await asyncio.sleep(JOIN_WAIT_SECONDS)

    def _settled_share(self, share: float, now: float) -> float:
        """`share` at once when it is smaller; a larger one only GROW_WAIT_SECONDS after it was first seen."""
        if self._share is None or share <= self._share:
            self._share, self._grow_at = share, None
        elif self._grow_at is None:
            self._grow_at = now + GROW_WAIT_SECONDS
        elif now >= self._grow_at:
            self._share, self._grow_at = share, None
        return self._share

    async def _leave(self) -> None:
        self._joined = False
        self._share_checked = self._presence_renewed = -float("inf")
        with contextlib.suppress(SQLAlchemyError):
            async with self.sessionmaker() as session:
                await session.execute(delete(Lease).where(Lease.name == PRESENCE_PREFIX + self.name))
                await session.commit()

    # ------------------------------------------------------------------ claims

    def _claimable(self, now: dt.datetime) -> Any:
        # rows for group robots and mailboxes are the channel sender's (bot.channels.sender)
        return and_(Outbox.channel_id.is_(None), claimable(now))

    async def _claim(self, limit: int) -> list[Claimed]:
        """Claim up to `limit` due rows, oldest first; rows other senders took meanwhile are skipped."""
        now = self.clock()
        until = now + dt.timedelta(seconds=self.claim_seconds)
        async with self.sessionmaker() as session:
            # queued for someone known to be unreachable: never sent
            unreachable = select(Person.id).where(Person.reachable.is_(False))
            await session.execute(
                update(Outbox)
                .where(Outbox.state == OutboxState.PENDING, Outbox.person_id.in_(unreachable))
                .values(state=OutboxState.DEAD, last_error=UNREACHABLE)
                .execution_options(synchronize_session=False)
            )
            candidates = (
                await session.execute(
                    select(Outbox.id, Outbox.chat_id)
                    .where(self._claimable(now))
                    .order_by(Outbox.not_before, Outbox.id)
                    .limit(limit)
                )
            ).all()
            # A chat another sender is busy with stays with it, so one chat's messages keep their order.
            busy_chats = set(
                await session.scalars(
                    select(Outbox.chat_id).where(
                        Outbox.state == OutboxState.SENDING, Outbox.claimed_by != self.name,
                        Outbox.claimed_until >= now,
                    )
                )
            )
            mine: list[int] = []
            for row_id, chat_id in candidates:
                if chat_id in busy_chats:
                    continue
                if await try_claim(session, row_id, self.name, now, until):
                    mine.append(row_id)
                else:  # another sender got there first: its chat is now that sender's
                    busy_chats.add(chat_id)
            await session.commit()
            if not mine:
                return []
            rows = await session.scalars(
                select(Outbox)
                .where(Outbox.id.in_(mine), Outbox.claimed_by == self.name)
                .order_by(Outbox.not_before, Outbox.id)
            )
            claimed_at = self.monotonic()
            return [
                Claimed(row.id, row.chat_id, row.person_id, row.method, dict(row.payload or {}), row.attempts,
                        claimed_at)
                for row in rows
            ]

    # ------------------------------------------------------------------ one message

    async def _deliver(self, row: Claimed) -> bool:
        """Send one claimed row and record the outcome; True when it was sent."""
        outcome = _Outcome("release", not_before=self.clock())  # if cancelled: given back untried
        try:
            outcome = await self._attempt(row)
        except Exception as exc:  # a bug, not Telegram: count it as an attempt so the row cannot loop forever
            log.exception("sender %s: sending outbox row %s failed", self.name, row.id)
            outcome = _Outcome("retry", error=repr(exc))
        finally:
            # recorded even when cancelled, so a stopping service gives back what it did not send
            await asyncio.shield(self._record(row, outcome))
        return outcome.state == OutboxState.SENT

    async def _attempt(self, row: Claimed) -> _Outcome:
        problem = self._check_payload(row)
        if problem:
            return _Outcome(OutboxState.DEAD, error=problem)
        if expired(row.payload, self.clock()):  # before taking a slot: it costs none of the rate
            return _Outcome(OutboxState.EXPIRED, error=OutboxState.EXPIRED)
        while True:
            async with self.pacer.slot(row.chat_id):
                now = self.clock()
                if expired(row.payload, now):  # it waited for its turn past the expiry
                    return _Outcome(OutboxState.EXPIRED, error=OutboxState.EXPIRED)
                if row.chat_id in self._unreachable_chats:  # a 403 came back for this chat a moment ago
                    return _Outcome(OutboxState.DEAD, error=UNREACHABLE)
                if self._quiet(now):
                    return _Outcome("release", not_before=quiet_until(now, self.settings.quiet_window,
                                                                      self.settings.tz))
                if self.monotonic() - row.claimed_at > self.claim_seconds - self.request_timeout - 10:
                    return _Outcome("release", not_before=now)  # waited so long the claim may lapse mid-send
                try:
                    message_id = await self._call(row)
                except TelegramRetryAfter as exc:
                    self.stats["retry_after"] += 1
                    # our own per-chat pace cannot have tripped if we sent nothing else there lately
                    scope = row.chat_id if self.pacer.recently_sent_to(row.chat_id) else None
                    self.pacer.pause(exc.retry_after, scope)
                    log.warning("429 for chat %s: waiting %s s (%s)", row.chat_id, exc.retry_after,
                                "this chat" if scope else "everything")
                    if exc.retry_after > RETRY_IN_PLACE_SECONDS:
                        return _Outcome("release", not_before=now + dt.timedelta(seconds=exc.retry_after))
                    continue  # not a failed attempt: wait out the pause and send again
                except TelegramMigrateToChat as exc:
                    return _Outcome("migrated", new_chat_id=exc.migrate_to_chat_id, not_before=now)
                except TelegramForbiddenError as exc:
                    self._unreachable_chats.add(row.chat_id)
                    return _Outcome("unreachable", error=exc.message)
                except (TelegramBadRequest, TelegramNotFound, TelegramEntityTooLarge, ValidationError) as exc:
                    return _Outcome(OutboxState.DEAD, error=getattr(exc, "message", None) or str(exc))
                except TelegramUnauthorizedError as exc:
                    log.error("Telegram rejects the bot token (%s): sending paused", exc.message)
                    self.pacer.pause(UNAUTHORIZED_PAUSE_SECONDS)
                    return _Outcome("release", not_before=now)
                except Exception as exc:  # network, timeout, 5xx, anything unforeseen: retried, then dead
                    log.warning("send to chat %s failed (attempt %s): %r", row.chat_id, row.attempts, exc)
                    return _Outcome("retry", error=getattr(exc, "message", None) or repr(exc))
                return _Outcome(OutboxState.SENT, message_id=message_id)

    def _check_payload(self, row: Claimed) -> str:
        if row.method == "message":
            return "" if row.payload.get("text") else "empty message text"
        if row.method in ("photo", "document"):
            path = row.payload.get("path")
            if not path:
                return f"no file path for a {row.method}"
            if not (self.settings.data_dir / path).is_file():
                return f"file not found: {path}"
            return ""
        return f"unknown send method {row.method!r}"

    async def _call(self, row: Claimed) -> int:
        payload = row.payload
        markup_data = payload.get("reply_markup")
        markup = InlineKeyboardMarkup.model_validate(markup_data) if markup_data else None
        common: dict[str, Any] = {"chat_id": row.chat_id, "reply_markup": markup, "parse_mode": "HTML",
                                  "request_timeout": int(max(1, self.request_timeout))}
        with paced_by_caller():  # paced and retried here, not again by the Bot's answer middleware
            if row.method == "message":
                message = await self.bot.send_message(text=payload["text"], **common)
            else:
                file = FSInputFile(self.settings.data_dir / payload["path"], filename=payload.get("filename"))
                caption = payload.get("caption") or None
                if row.method == "photo":
                    message = await self.bot.send_photo(photo=file, caption=caption, **common)
                else:
                    message = await self.bot.send_document(document=file, caption=caption, **common)
        return message.message_id

    # ------------------------------------------------------------------ recording outcomes

    async def _record(self, row: Claimed, outcome: _Outcome) -> None:
        now = self.clock()
        if outcome.state == "sent":
            self.stats["sent"] += 1
        elif outcome.state == "retry":
            self.stats["retried"] += 1
        elif outcome.state not in ("release", "migrated"):  # dead, unreachable, expired
            self.stats[outcome.state] += 1
        if outcome.state == OutboxState.EXPIRED:
            log.warning("outbox row %s expired unsent (%s): not sent late", row.id, row.payload.get("expires_at"))
        state = "release" if outcome.state == "migrated" else outcome.state  # not a failed attempt: given back
        values = outcome_values(state, now=now, attempts=row.attempts, max_attempts=self.settings.send_max_attempts,
                                error=outcome.error, not_before=outcome.not_before, message_id=outcome.message_id)
        if outcome.new_chat_id is not None:
            values["chat_id"] = outcome.new_chat_id
        try:
            async with self.sessionmaker() as session:
                recorded = await settle(session, row.id, self.name, values)
                if outcome.state == "unreachable":
                    await self._mark_unreachable(session, row, outcome.error)
                await session.commit()
        except SQLAlchemyError:
            # the claim expires and the row is tried again: at worst this message goes twice
            log.exception("sender %s: could not record outbox row %s as %s", self.name, row.id, outcome.state)
            return
        if not recorded:
            log.warning("outbox row %s was claimed by another sender while %s held it", row.id, self.name)

    async def _mark_unreachable(self, session: AsyncSession, row: Claimed, reason: str) -> None:
        if row.person_id is None:
            return
        await session.execute(
            update(Person)
            .where(Person.id == row.person_id)
            .values(reachable=False, unreachable_reason=reason[:200])
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Outbox)
            .where(Outbox.person_id == row.person_id, Outbox.state == OutboxState.PENDING)
            .values(state=OutboxState.DEAD, last_error=UNREACHABLE)
            .execution_options(synchronize_session=False)
        )
        log.info("person %s is unreachable (%s); their queued messages are dropped", row.person_id, reason)
