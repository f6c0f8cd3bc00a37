"""ORM models (SQLAlchemy 2, typed). Reports, ledger changes and the outbox are append-mostly logs.

Over ~400 lines on purpose: the whole schema in one place, as Alembic's autogenerate and a reader of the
migrations see it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.domain.clock import utcnow
from bot.domain.project_code import MAX_CODE_LENGTH
from bot.domain.states import Light, OutboxState, ProblemStep, ProjectStatus, Role


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class StateText(TypeDecorator[Any]):
    """A state of bot/domain/states.py in a String column, stored as its string and read back as the
    member. A value that is not a member is refused before it is sent; the CHECK constraint (`one_of`)
    refuses it in the database too, whoever writes it."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        self._members: dict[str, StrEnum] = {m.value: m for m in enum}  # a dict is ~10x faster than enum(value)

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        if value is None:
            return None
        member = self._members.get(value)
        return member if member is not None else self.enum(value)  # a stray value raises as before


class StepNumber(TypeDecorator[Any]):
    """A problem's escalation step (ProblemStep) in an Integer column, read back as the member."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else ProblemStep(value).value

    def process_result_value(self, value: Any, dialect: Any) -> ProblemStep | None:
        return None if value is None else ProblemStep(value)


def one_of(column: str, enum: type[StrEnum] | type[IntEnum]) -> CheckConstraint:
    """CHECK that `column` holds a member of `enum` (NULL passes), named ck_<table>_<column> by NAMING;
    migrations/versions/0003_state_checks.py adds them to an existing database."""
    values = ", ".join(f"'{m.value}'" if isinstance(m, StrEnum) else str(int(m)) for m in enum)
    return CheckConstraint(f"{column} IN ({values})", name=column)


Money = Numeric(14, 2)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, Decimal: Money, dict[str, Any]: JSON}  # noqa: RUF012


class County(Base):
    __tablename__ = "counties"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    sort_order: Mapped[int] = mapped_column(default=0)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (one_of("status", ProjectStatus),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(MAX_CODE_LENGTH), unique=True)  # canonical: bot/domain/project_code.py
    name: Mapped[str] = mapped_column(String(200))
    county_id: Mapped[int] = mapped_column(ForeignKey("counties.id"), index=True)
    category: Mapped[str] = mapped_column(String(50), default="")
    unit: Mapped[str] = mapped_column(String(200), default="")
    planned_start: Mapped[dt.date | None] = mapped_column(Date)
    planned_finish: Mapped[dt.date | None] = mapped_column(Date)
    investment: Mapped[Decimal | None]
    status: Mapped[ProjectStatus] = mapped_column(StateText(ProjectStatus, 16), default=ProjectStatus.NOT_STARTED)
    progress: Mapped[int] = mapped_column(default=0)
    investment_done: Mapped[Decimal | None]
    actual_start: Mapped[dt.date | None] = mapped_column(Date)
    actual_finish: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    county: Mapped[County] = relationship(lazy="joined")
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="project", order_by="Milestone.due", cascade="all, delete-orphan"
    )


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    due: Mapped[dt.date | None] = mapped_column(Date)
    done: Mapped[dt.date | None] = mapped_column(Date)

    project: Mapped[Project] = relationship(back_populates="milestones")


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (one_of("role", Role),)

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[Role] = mapped_column(StateText(Role, 16))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    county: Mapped[County | None] = relationship(lazy="joined")


class Invite(Base):
    __tablename__ = "invites"
    __table_args__ = (one_of("role", Role),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(StateText(Role, 16))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class Report(Base):
    """Append-only. `kind`: progress | no_change | undo (an undo names the report it takes back)."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_project_period", "project_id", "period"),
        # "who reported this month" reads one month's rows, not the history (PostgreSQL has no skip scan)
        Index("ix_reports_period_project", "period", "project_id"),
        # "is this report undone?" is asked of every report counted: a seek, and the undos alone in a range
        Index("ix_reports_kind_undoes", "kind", "undoes_id"),
        one_of("status", ProjectStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM in the city's time zone
    kind: Mapped[str] = mapped_column(String(16), default="progress")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[ProjectStatus | None] = mapped_column(StateText(ProjectStatus, 16))  # the status it reported
    progress: Mapped[int | None]
    investment_done: Mapped[Decimal | None]
    milestone_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    problems: Mapped[str] = mapped_column(Text, default="")
    next_steps: Mapped[str] = mapped_column(Text, default="")
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    # the Telegram update that carried it, so a redelivered update is applied once
    update_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)

    photos: Mapped[list[Photo]] = relationship(order_by="Photo.id", lazy="selectin")


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(String(200))
    file_unique_id: Mapped[str] = mapped_column(String(100), default="")
    path: Mapped[str] = mapped_column(String(300), default="")  # copy under DATA_DIR


class Change(Base):
    """One field of the ledger changed, by an import, a report or an undo: the dossier's timeline."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_project_at", "project_id", "at"),
        # "what changed this week / month" across the city (the digest) reads only the recent rows
        Index("ix_changes_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(16))  # import | report | undo | create
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    field: Mapped[str] = mapped_column(String(250))  # "milestone:<name>" holds a 200-char name
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)


class Problem(Base):
    """An open issue with a project (light, overdue milestone, missed update) and its escalation step."""

    __tablename__ = "problems"
    __table_args__ = (
        UniqueConstraint("project_id", "kind", "ref", "opened_at"),
        # at most one open problem per project, kind and ref, even if two alert runs overlap
        Index("uq_problems_open", "project_id", "kind", "ref", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        one_of("level", Light),
        one_of("step", ProblemStep),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # light | milestone | missed_update
    ref: Mapped[str] = mapped_column(String(40), default="")  # milestone id, period …
    level: Mapped[Light] = mapped_column(StateText(Light, 8), default=Light.YELLOW)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    step: Mapped[ProblemStep] = mapped_column(StepNumber, default=ProblemStep.NONE)
    step_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class Outbox(Base):
    """Notifications decided but maybe not yet sent; `key` makes deciding twice queue once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "not_before"), one_of("state", OutboxState))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # kind:person:period:step
    kind: Mapped[str] = mapped_column(String(24))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(16), default="message")  # message | photo | document
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[OutboxState] = mapped_column(StateText(OutboxState, 8), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # a group robot or a mailbox (README "Channels"): chat_id is then 0 and the channel sender sends it
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)


class Channel(Base):
    """A WeCom, DingTalk or Feishu group robot, or e-mail addresses, getting digests and alerts (README "Channels")."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # wecom | dingtalk | feishu | email
    target: Mapped[str] = mapped_column(Text)  # the robot's webhook URL, or comma-separated addresses
    secret: Mapped[str] = mapped_column(String(200), default="")  # DingTalk 加签 / Feishu signature secret
    county_id: Mapped[int | None] = mapped_column(ForeignKey("counties.id"), index=True)  # None: the city
    sends: Mapped[str] = mapped_column(String(60), default="digest,alerts")  # digest, alerts, reminders
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_ok_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[dt.datetime | None]

    county: Mapped[County | None] = relationship(lazy="joined")


class Snapshot(Base):
    """Figures as a digest showed them, so the next digest can say what changed since."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("scope", "taken_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))  # city | county:<id>
    taken_on: Mapped[dt.date] = mapped_column(Date)
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Lease(Base):
    """Who runs the scheduler; a holder renews `expires_at`, anyone may take an expired lease."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]


class ProcessedUpdate(Base):
    """Telegram update ids already handled, so a redelivered update is applied once."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FsmRecord(Base):
    """aiogram FSM state and data when Redis is not configured, so a dialog survives a restart."""

    __tablename__ = "fsm_states"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobRun(Base):
    """The last moment each job was run for, shown by `jobs list`."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_at: Mapped[dt.datetime]
    summary: Mapped[str] = mapped_column(Text, default="")


class WebAccess(Base):
    """A person's cockpit links (README "Cockpit"): a link carries the generation it was issued in, and
    revoking bumps it, so every earlier link of that person stops working at once."""

    __tablename__ = "web_access"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True,
                                           autoincrement=False)
    generation: Mapped[int] = mapped_column(default=0)
    revoked_at: Mapped[dt.datetime | None]


__all__ = [
    "Base",
    "Change",
    "Channel",
    "County",
    "FsmRecord",
    "Invite",
    "JobRun",
    "Lease",
    "Milestone",
    "Outbox",
    "Person",
    "Photo",
    "Problem",
    "ProcessedUpdate",
    "Project",
    "Report",
    "Snapshot",
    "StateText",
    "StepNumber",
    "WebAccess",
    "one_of",
]
