"""Fault injection and flood limits: fail_next, delay_next, set_storm, calm, and the
per-chat and global rate limits a send is checked against."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import deque
from collections.abc import Iterable

from bot.demo.fake_telegram.api import _DEFAULT_DESCRIPTIONS, ApiError, FakeChat, RateLimits, _Fault, _Storm, _too_many


class FaultsMixin:
    """A part of FakeTelegram (server.py), which holds the state these methods use."""

    def set_rate_limits(
        self,
        per_chat_per_second: int | None = None,
        global_per_second: int | None = None,
        group_per_minute: int | None = None,
    ) -> None:
        self.limits = RateLimits(per_chat_per_second, global_per_second, group_per_minute)
        self._chat_windows.clear()
        self._global_window.clear()

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: int | None = None,
        methods: Iterable[str] | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching calls with ``status``.

        ``methods=None`` matches every method except getUpdates and getMe (so a running
        poller does not swallow the fault); name them explicitly to fail those.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(_Fault(n, status, retry_after, _method_set(methods), description))

    def delay_next(
        self, n: int = 1, seconds: float = 1.0, methods: Iterable[str] | None = None, execute: bool = True
    ) -> None:
        """Make the next ``n`` matching calls hang for ``seconds``.

        With ``execute=True`` the call is then performed even if the client timed out
        meanwhile (Telegram behaves so: a timed-out send may still have been delivered);
        with ``execute=False`` it answers 504 Gateway Timeout without doing anything.
        """
        self._delays.append(_Fault(n, 504, None, _method_set(methods), None, delay=seconds, execute=execute))

    def set_storm(
        self,
        probability: float,
        kinds: Iterable[str] = ("429", "500", "502", "timeout"),
        seed: int | None = None,
        *,
        retry_after: int = 1,
        hang_seconds: float = 2.0,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Randomly fail calls with 429/5xx or hang (``"timeout"``) until ``calm()``."""
        kinds_t = tuple(str(k) for k in kinds)
        for k in kinds_t:
            if k != "timeout" and not k.isdigit():
                raise ValueError(f"unknown storm kind {k!r}")
        self._storm = _Storm(probability, kinds_t, random.Random(seed), retry_after, hang_seconds, _method_set(methods))

    def calm(self) -> None:
        """Stop the storm and drop pending fail_next/delay_next rules."""
        self._storm = None
        self._faults.clear()
        self._delays.clear()

    async def _inject(self, method: str) -> None:
        """Apply delay_next / fail_next / storm rules to this call (raise ApiError to fail it)."""
        for rule in self._delays:
            if rule.remaining > 0 and rule.matches(method):
                rule.remaining -= 1
                self.counters["delayed"] += 1
                await self._sleep(rule.delay)
                if not rule.execute:
                    raise ApiError(504, "Gateway Timeout")
                break
        self._delays = [r for r in self._delays if r.remaining > 0]
        for rule in self._faults:
            if rule.remaining > 0 and rule.matches(method):
                rule.remaining -= 1
                self._faults = [r for r in self._faults if r.remaining > 0]
                self.counters[f"injected_{rule.status}"] += 1
                raise _fault_error(rule.status, rule.retry_after, rule.description)
        storm = self._storm
        if storm is not None and storm.matches(method) and storm.rng.random() < storm.probability:
            kind = storm.rng.choice(storm.kinds)
            self.counters[f"storm_{kind}"] += 1
            if kind == "timeout":
                await self._sleep(storm.hang_seconds)
                raise ApiError(504, "Gateway Timeout")
            raise _fault_error(int(kind), storm.retry_after, None)

    async def _sleep(self, seconds: float) -> None:
        # Wakes early on stop() so hanging calls never block shutdown.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _check_rate(self, chat: FakeChat, now: float) -> None:
        limits = self.limits
        if chat.type == "private":
            per, window = limits.per_chat_per_second, 1.0
        else:
            per, window = limits.group_per_minute, 60.0
        if per:
            w = self._chat_windows.get(chat.id)
            if w is not None:
                while w and w[0] <= now - window:
                    w.popleft()
                if len(w) >= per:
                    self._rate_limited(w[0] + window - now)
        if limits.global_per_second:
            g = self._global_window
            while g and g[0] <= now - 1.0:
                g.popleft()
            if len(g) >= limits.global_per_second:
                self._rate_limited(g[0] + 1.0 - now)

    def _rate_limited(self, wait: float) -> None:
        self.counters["rate_limited"] += 1
        raise _too_many(max(1, math.ceil(wait)))

    def _note_send(self, chat: FakeChat, now: float) -> None:
        self._chat_windows.setdefault(chat.id, deque()).append(now)
        self._global_window.append(now)


def _method_set(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.lower() for m in methods)


def _fault_error(status: int, retry_after: int | None, description: str | None) -> ApiError:
    if status == 429:
        return _too_many(retry_after or 1)
    return ApiError(status, description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}"))
