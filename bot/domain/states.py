"""Every state a row or a rule can be in, in one place: the values stored in the database (CHECK
constraints keep them there, migrations/versions/0003_*) and compared in code. StrEnum members equal their
strings, so `project.status == ProjectStatus.COMPLETED` and `== "completed"` agree; write the member."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ProjectStatus(StrEnum):
    """状态 in the ledger: 未开工 / 已开工 / 已完工."""

    NOT_STARTED = "not_started"
    STARTED = "started"
    COMPLETED = "completed"


class Light(StrEnum):
    """红黄绿灯, from the time-based plan and the milestones (bot/domain/lights.py)."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Light.GREEN: 0, Light.YELLOW: 1, Light.RED: 2}


class Role(StrEnum):
    """Who someone is (README "Using the bot"); what each may do is bot/domain/access.py."""

    ADMIN = "admin"
    LEADER = "leader"
    COUNTY_LEADER = "county_leader"
    CONTACT = "contact"


class OutboxState(StrEnum):
    """An outbox row's life: pending → sending (claimed) → sent, or dead (refused, unreachable, out of
    attempts), or expired (a monthly reminder not sent before the month's deadline)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    EXPIRED = "expired"


class ProblemStep(IntEnum):
    """How far a problem has escalated (README "Notifications"): each step is sent once."""

    NONE = 0
    CONTACT = 1
    COUNTY_LEADER = 2
    CITY = 3
