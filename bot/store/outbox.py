"""The outbox: a job's decision to notify someone is a row, written in the job's transaction.

The unique `key` (kind:person:period:step) makes deciding twice queue once. A row may carry an
expiry (`expires_at` in its payload): the sender never sends it after that moment and marks it
OutboxState.EXPIRED instead (a monthly reminder after the month's deadline, README "Notifications")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.clock import utcnow
from bot.domain.states import OutboxState
from bot.store.models import Outbox

EXPIRES_AT = "expires_at"


def expired(payload: dict[str, Any], now: dt.datetime) -> bool:
    """Whether a row with this payload is past its expiry at `now` (a row without one never expires)."""
    value = payload.get(EXPIRES_AT)
    return bool(value) and dt.datetime.fromisoformat(str(value)) <= now


def outbox_key(kind: str, person_id: int | None, period: str = "", step: int | str = 0) -> str:
    return f"{kind}:{person_id if person_id is not None else '-'}:{period}:{step}"


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
    expires_at: dt.datetime | None = None,
) -> bool:
    """Queue one notification unless one with this key exists; True when queued. Does not commit.

    `payload` holds what the sender needs: text (Telegram HTML), reply_markup (dict), or for
    photos and documents `path` (under DATA_DIR) and `caption`. Unsent at `expires_at`, it is never sent."""
    values = row(key=key, kind=kind, chat_id=chat_id, person_id=person_id, payload=payload, method=method,
                 not_before=not_before, expires_at=expires_at)
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
    expires_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One outbox row for enqueue_many (the same arguments as enqueue)."""
    now = utcnow()
    if expires_at is not None:
        payload = {**payload, EXPIRES_AT: expires_at.astimezone(dt.UTC).isoformat()}
    return {"key": key, "kind": kind, "person_id": person_id, "chat_id": chat_id, "method": method,
            "payload": payload, "state": OutboxState.PENDING, "attempts": 0, "not_before": not_before or now,
            "created_at": now, "last_error": ""}


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
