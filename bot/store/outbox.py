"""The outbox: a job's decision to notify someone is a row, written in the job's transaction.

The unique `key` (kind:person:period:step, or kind:ch<channel>:period:step for a group robot or a
mailbox) makes deciding twice queue once. The claim and the recording of an outcome are shared by the
Telegram sender (bot.telegram.sender) and the channel sender (bot.channels.sender). A row may carry an
expiry (`expires_at` in its payload): no sender sends it after that moment, it is marked 'expired'
instead (a monthly reminder after the month's deadline, README "Notifications")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.clock import utcnow
from bot.domain.states import OutboxState
from bot.store.models import Outbox

BACKOFF_FIRST_SECONDS = 30.0  # then doubling: with 8 attempts a message is retried for about an hour
BACKOFF_MAX_SECONDS = 3600.0
EXPIRES_AT = "expires_at"


def expired(payload: dict[str, Any], now: dt.datetime) -> bool:
    """Whether a row with this payload is past its expiry at `now` (a row without one never expires)."""
    value = payload.get(EXPIRES_AT)
    return bool(value) and dt.datetime.fromisoformat(str(value)) <= now


def outbox_key(kind: str, person_id: int | None, period: str = "", step: int | str = 0) -> str:
    return f"{kind}:{person_id if person_id is not None else '-'}:{period}:{step}"


def channel_key(kind: str, channel_id: int, period: str = "", step: int | str = 0) -> str:
    """The key of a message to a channel (group robot or mailbox): `kind:ch<id>:period:step`."""
    return f"{kind}:ch{channel_id}:{period}:{step}"


def backoff_seconds(attempts: int) -> float:
    """Wait before retry number `attempts` (1 → 30 s, 2 → 60 s … at most an hour)."""
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(0, attempts - 1), BACKOFF_MAX_SECONDS)


def claimable(now: dt.datetime) -> Any:
    """Rows a sender may claim at `now`: pending and due, or claimed by a sender whose claim lapsed."""
    return or_(
        and_(Outbox.state == OutboxState.PENDING, Outbox.not_before <= now),
        and_(Outbox.state == OutboxState.SENDING, Outbox.claimed_until < now),
    )


async def try_claim(session: AsyncSession, row_id: int, name: str, now: dt.datetime, until: dt.datetime) -> bool:
    """Claim one row for sender `name` until `until`, counting an attempt: one conditional UPDATE, so
    of several senders exactly one gets it (on SQLite and PostgreSQL alike). Does not commit."""
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id, claimable(now))
        .values(state=OutboxState.SENDING, claimed_by=name, claimed_until=until, attempts=Outbox.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def outcome_values(
    state: str,
    *,
    now: dt.datetime,
    attempts: int,
    max_attempts: int,
    error: str = "",
    not_before: dt.datetime | None = None,
    message_id: int | None = None,
) -> dict[str, Any]:
    """The columns to write for a claimed row's outcome: `sent`; `release` (not a failed attempt: given
    back, due at `not_before`); `retry` (failed: backoff, dead after `max_attempts`); anything else dead."""
    if state == OutboxState.SENT:
        return {"state": OutboxState.SENT, "sent_at": now, "message_id": message_id, "claimed_until": None,
                "last_error": ""}
    if state == "release":
        return {"state": OutboxState.PENDING, "attempts": Outbox.attempts - 1, "claimed_by": None,
                "claimed_until": None, "not_before": not_before or now}
    if state == OutboxState.EXPIRED:  # not sent late, and not a failed attempt
        return {"state": OutboxState.EXPIRED, "attempts": Outbox.attempts - 1, "last_error": OutboxState.EXPIRED.value,
                "claimed_until": None}
    if state == "retry":
        return {"state": OutboxState.DEAD if attempts >= max_attempts else OutboxState.PENDING,
                "last_error": error[:2000], "claimed_by": None, "claimed_until": None,
                "not_before": now + dt.timedelta(seconds=backoff_seconds(attempts))}
    return {"state": OutboxState.DEAD, "last_error": error[:2000] or state, "claimed_until": None}


async def settle(session: AsyncSession, row_id: int, name: str, values: dict[str, Any]) -> bool:
    """Write an outcome to a row `name` still holds; False when another sender took it meanwhile."""
    mine = and_(Outbox.id == row_id, Outbox.claimed_by == name, Outbox.state == OutboxState.SENDING)
    result = await session.execute(update(Outbox).where(mine).values(**values)
                                   .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    chat_id: int,
    person_id: int | None,
    payload: dict[str, Any],
    method: str = "message",
    not_before: dt.datetime | None = None,
    channel_id: int | None = None,
    expires_at: dt.datetime | None = None,
) -> bool:
    """Queue one notification unless one with this key exists; True when queued. Does not commit.

    `payload` holds what the sender needs: text (Telegram HTML), reply_markup (dict), or for
    photos and documents `path` (under DATA_DIR) and `caption`. Unsent at `expires_at`, it is never sent."""
    values = row(key=key, kind=kind, chat_id=chat_id, person_id=person_id, payload=payload, method=method,
                 not_before=not_before, channel_id=channel_id, expires_at=expires_at)
    return await enqueue_many(session, [values]) == 1


def row(
    *,
    key: str,
    kind: str,
    chat_id: int,
    person_id: int | None,
    payload: dict[str, Any],
    method: str = "message",
    not_before: dt.datetime | None = None,
    channel_id: int | None = None,
    expires_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One outbox row for enqueue_many (the same arguments as enqueue)."""
    now = utcnow()
    if expires_at is not None:
        payload = {**payload, EXPIRES_AT: expires_at.astimezone(dt.UTC).isoformat()}
    return {"key": key, "kind": kind, "person_id": person_id, "chat_id": chat_id, "method": method,
            "payload": payload, "state": OutboxState.PENDING, "attempts": 0, "not_before": not_before or now,
            "created_at": now, "last_error": "", "channel_id": channel_id}


CHUNK = 500  # rows per INSERT: SQLite caps bound parameters


async def enqueue_many(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Queue many notifications in a few multi-row INSERTs, skipping keys already queued; returns how many
    were new. A job that decides thousands of notifications holds the write lock for milliseconds, not seconds."""
    dialect = session.get_bind().dialect.name
    queued = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        stmt: Any
        if dialect == "postgresql":
            stmt = postgresql.insert(Outbox).values(chunk).on_conflict_do_nothing(index_elements=["key"])
        elif dialect == "sqlite":
            stmt = sqlite.insert(Outbox).values(chunk).on_conflict_do_nothing(index_elements=["key"])
        else:  # pragma: no cover - only the two supported backends
            stmt = insert(Outbox).values(chunk)
        result = await session.execute(stmt)
        queued += result.rowcount  # type: ignore[attr-defined]
    return queued
