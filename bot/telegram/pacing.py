"""Pacing sends under Telegram's limits: overall per second, per private chat, per group per minute.

Each limit is a sliding window ("at most N sends in any W seconds"), which is the shape Telegram
enforces. A send occupies its slot from the moment it starts until it completes and is then counted
from its completion: the server saw it somewhere in between, so a window measured this way can
never be fuller on the server's side than on ours, whatever the network latency and its jitter.
Sends within one window are also spaced (80 % of the window divided evenly), so a window's worth
does not leave in a single burst. Waiting for a slot is first come, first served per chat, so one
chat's messages leave in the order they were queued. Overall, the queue has three classes, each first
come first served within itself: a person's first answer in a while (FIRST_ANSWER), then the next
answers of a conversation going on (ANSWER), then queued notifications (NOTIFICATION): under a crowd
everyone hears back quickly, and a reminder wave never holds up a conversation.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import IntEnum

from bot.config import Settings

Monotonic = Callable[[], float]
SMOOTHING = 0.8  # sends of one window are spaced over 80 % of it, leaving room for latency jitter
CONVERSATION_SECONDS = 5.0  # a chat sent to within this is in a conversation: its next answer is not a first


class Priority(IntEnum):
    """The overall queue's classes, most urgent first."""

    FIRST_ANSWER = 0
    ANSWER = 1
    NOTIFICATION = 2


class _PriorityLock:
    """An asyncio lock whose waiters are served by (priority, arrival). Its holder may wait inside (for the
    window to open) and then `defer` to a more urgent waiter that came meanwhile. The lock knows its
    holder's place, so a release by anyone else (a holder cancelled after handing the lock on) does
    nothing: one holder at a time, whatever is cancelled when."""

    def __init__(self) -> None:
        self._holder: tuple[int, int] | None = None
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self, priority: int) -> tuple[int, int]:
        """Hold the lock; returns this holder's place (priority, arrival), for `defer` and `release`."""
        key = (priority, next(self._arrivals))
        if self._holder is None and not self._waiters:
            self._holder = key
            return key
        await self._wait_turn(key)
        return key

    async def defer(self, key: tuple[int, int]) -> bool:
        """Let a more urgent waiter go first, then hold the lock again; False when none was waiting."""
        if not self._waiters or self._waiters[0][:2] > key:
            return False
        await self._wait_turn(key, hand_over=True)
        return True

    async def _wait_turn(self, key: tuple[int, int], *, hand_over: bool = False) -> None:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (*key, turn))  # a deferring holder keeps its old place
        if hand_over:
            self.release(key)  # to the most urgent waiter, never back to us: its place is before ours
        try:
            await turn
        except asyncio.CancelledError:
            self.release(key)  # handed the lock just as we were cancelled: pass it on (else nothing)
            raise

    def release(self, key: tuple[int, int]) -> None:
        """Pass the lock to the most urgent waiter, if `key` holds it."""
        if self._holder != key:
            return
        while self._waiters:
            priority, arrival, turn = heapq.heappop(self._waiters)
            if not turn.done():  # a cancelled waiter's future is done already
                self._holder = (priority, arrival)
                turn.set_result(None)  # the lock passes to it, still held
                return
        self._holder = None


def rate_share(total: float, senders: list[str], me: str) -> float:
    """This sender's part of the overall rate when `senders` (sorted names) share it.

    Whole messages per second are dealt out so the parts add up to the whole budget (25 over two:
    13 and 12) and never to more; a budget smaller than the number of senders is split evenly."""
    count = max(1, len(senders))
    budget = math.floor(total)
    if budget < count:
        return total / count
    index = senders.index(me) if me in senders else count - 1
    return budget // count + (1 if index < budget % count else 0)


@dataclass
class SlidingWindow:
    """At most `count` sends in any `seconds`; in-flight sends count as occupying the window."""

    count: int
    seconds: float
    done: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    last_start: float = -math.inf

    @property
    def spacing(self) -> float:
        """Least time between two starts: a window's sends spread over most of it, not in one burst."""
        return SMOOTHING * self.seconds / self.count

    @classmethod
    def per(cls, rate: float, seconds: float) -> SlidingWindow:
        """`rate` sends per `seconds`, rounded down (12.5/s → 12 in any second, so two senders sharing
        25/s never add up to more); below one, the window widens (0.5/s → 1 in any 2 s)."""
        if rate >= 1:
            return cls(count=math.floor(rate), seconds=seconds)
        return cls(count=1, seconds=seconds / rate)

    def wait_time(self, now: float) -> float:
        """Seconds until a new send fits (0: now); inf while the window is full of sends in flight."""
        while self.done and self.done[0] <= now - self.seconds:
            self.done.popleft()
        if len(self.done) + self.in_flight < self.count:
            return max(0.0, self.last_start + self.spacing - now)
        if self.in_flight >= self.count:
            return math.inf  # full of sends in flight: wait for one to finish
        # the oldest completions that must age out before one more fits
        must_expire = self.done[len(self.done) + self.in_flight - self.count]
        return max(0.0, must_expire + self.seconds - now, self.last_start + self.spacing - now)

    def start(self, now: float) -> None:
        self.in_flight += 1
        self.last_start = now

    def finish(self, now: float) -> None:
        self.in_flight -= 1
        self.done.append(now)

    def busy_within(self, now: float) -> bool:
        """Whether anything was sent (or is in flight) within the window before `now`."""
        return self.in_flight > 0 or any(t > now - self.seconds for t in self.done)


class Pacer:
    """The global window plus one window per chat (private chats and groups have different limits)."""

    def __init__(
        self,
        global_rate: float,
        per_chat_rate: float,
        per_group_minute: float,
        *,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.monotonic = monotonic
        self.global_window = SlidingWindow.per(global_rate, 1.0)
        self.per_chat_rate = per_chat_rate
        self.per_group_minute = per_group_minute
        self._chats: dict[int, SlidingWindow] = {}
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._global_lock = _PriorityLock()
        self._last_sent: dict[int, float] = {}  # chat -> when its last send finished
        self._paused_until = 0.0
        self._chat_paused_until: dict[int, float] = {}
        self._changed = asyncio.Event()

    def set_global_rate(self, rate: float) -> None:
        """Change the overall rate (e.g. when senders share the bot's budget), keeping what was sent."""
        fresh = SlidingWindow.per(rate, 1.0)
        if (fresh.count, fresh.seconds) != (self.global_window.count, self.global_window.seconds):
            old = self.global_window
            fresh.done, fresh.in_flight, fresh.last_start = old.done, old.in_flight, old.last_start
            self.global_window = fresh
            self._poke()

    def _window(self, chat_id: int) -> SlidingWindow:
        window = self._chats.get(chat_id)
        if window is None:
            # Telegram: private chats have positive ids, groups and channels negative ones.
            window = (
                SlidingWindow.per(self.per_chat_rate, 1.0)
                if chat_id > 0
                else SlidingWindow.per(self.per_group_minute, 60.0)
            )
            self._chats[chat_id] = window
        return window

    def pause(self, seconds: float, chat_id: int | None = None) -> None:
        """Send nothing (to `chat_id`, or at all) for `seconds`: Telegram said retry_after."""
        until = self.monotonic() + seconds
        if chat_id is None:
            self._paused_until = max(self._paused_until, until)
        else:
            self._chat_paused_until[chat_id] = max(self._chat_paused_until.get(chat_id, 0.0), until)

    def paused_for(self) -> float:
        """Seconds left of a global pause (0 when none)."""
        return max(0.0, self._paused_until - self.monotonic())

    def recently_sent_to(self, chat_id: int) -> bool:
        """Whether a send to `chat_id` other than the one in hand could have tripped its own limit."""
        window = self._chats.get(chat_id)
        if window is None:
            return False
        now = self.monotonic()
        others_in_flight = window.in_flight > 1
        return others_in_flight or any(t > now - window.seconds for t in window.done)

    def _poke(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep `seconds` (inf: until a send finishes), waking early when pacing changes."""
        changed = self._changed
        timeout = None if math.isinf(seconds) else seconds
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            pass

    def answer_priority(self, chat_id: int) -> Priority:
        """A first answer when nothing went to `chat_id` for CONVERSATION_SECONDS, else a next answer."""
        last = self._last_sent.get(chat_id)
        if last is None or self.monotonic() - last > CONVERSATION_SECONDS:
            return Priority.FIRST_ANSWER
        return Priority.ANSWER

    @asynccontextmanager
    async def slot(self, chat_id: int, priority: Priority = Priority.NOTIFICATION) -> AsyncIterator[None]:
        """Wait for a slot for one send to `chat_id` (overall, served by `priority`), hold it during the
        send, then count it."""
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            window = self._window(chat_id)
            while True:
                now = self.monotonic()
                wait = max(window.wait_time(now), self._chat_paused_until.get(chat_id, 0.0) - now)
                if wait <= 0:
                    break
                await self._sleep(wait)
            place = await self._global_lock.acquire(priority)
            try:
                while True:
                    now = self.monotonic()
                    wait = max(self.global_window.wait_time(now), self._paused_until - now,
                               self._chat_paused_until.get(chat_id, 0.0) - now)
                    if wait > 0:
                        await self._sleep(wait)
                    elif not await self._global_lock.defer(place):  # a more urgent send came meanwhile
                        break
                self.global_window.start(now)
                window.start(now)
            finally:
                self._global_lock.release(place)
            try:
                yield
            finally:
                now = self.monotonic()
                self.global_window.finish(now)
                window.finish(now)
                self._last_sent[chat_id] = now
                self._poke()

    def forget_idle_chats(self) -> None:
        """Drop windows of chats not sent to lately, so memory does not grow with every chat ever seen."""
        now = self.monotonic()
        for chat_id in [c for c, w in self._chats.items() if not w.busy_within(now)]:
            lock = self._chat_locks.get(chat_id)
            if lock is None or not lock.locked():
                self._chats.pop(chat_id, None)
                self._chat_locks.pop(chat_id, None)
                if self._chat_paused_until.get(chat_id, 0.0) <= now:
                    self._chat_paused_until.pop(chat_id, None)
        for chat_id in [c for c, t in self._last_sent.items() if now - t > CONVERSATION_SECONDS]:
            self._last_sent.pop(chat_id, None)


def pacer_for(settings: Settings, *, monotonic: Monotonic = time.monotonic) -> Pacer:
    """The process's pacer for SEND_RATE_GLOBAL, SEND_RATE_PER_CHAT and SEND_RATE_PER_GROUP_MINUTE."""
    return Pacer(settings.send_rate_global, settings.send_rate_per_chat, settings.send_rate_per_group_minute,
                 monotonic=monotonic)
