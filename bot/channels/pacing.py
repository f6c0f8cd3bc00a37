"""A robot's pace: at most N sends in any W seconds, for each of its kind's windows.

A send counts from its completion (the robot saw it somewhere between start and completion, so our
window is never emptier than the robot's). One channel sends one message at a time, in order, so
that is exact. The windows are seeded from the outbox's `sent_at` whenever a sender takes a
channel up, so a restart or another instance's recent sends are counted too."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class RobotPace:
    def __init__(self, limits: Iterable[tuple[int, float]]) -> None:
        self.windows = [(count, seconds, deque[float]()) for count, seconds in limits]
        self.paused_until = 0.0

    @property
    def longest(self) -> float:
        return max((seconds for _, seconds, _ in self.windows), default=0.0)

    def wait_time(self, now: float) -> float:
        """Seconds until one more send fits every window (0: now)."""
        wait = max(0.0, self.paused_until - now)
        for count, seconds, done in self.windows:
            while done and done[0] <= now - seconds:
                done.popleft()
            if len(done) >= count:
                wait = max(wait, done[len(done) - count] + seconds - now)
        return wait

    def record(self, now: float) -> None:
        for _, _, done in self.windows:
            done.append(now)

    def pause(self, until: float) -> None:
        """The robot said "too fast": nothing until `until`."""
        self.paused_until = max(self.paused_until, until)

    def seed(self, completions: Iterable[float]) -> None:
        """Sends done at these (monotonic) moments, oldest first, before this pace was made."""
        for moment in sorted(completions):
            self.record(moment)
