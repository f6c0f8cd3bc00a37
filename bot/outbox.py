"""The outbox: a job's decision to notify someone is a row, written in the job's transaction.

The unique `key` (kind:person:period:step) makes deciding twice queue once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Outbox, utcnow


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
) -> bool:
    """Queue one notification unless one with this key exists; True when queued. Does not commit.

    `payload` holds what the sender needs: text (Telegram HTML), reply_markup (dict), or for
    photos and documents `path` (under DATA_DIR) and `caption`."""
    values = {
        "key": key,
        "kind": kind,
        "person_id": person_id,
        "chat_id": chat_id,
        "method": method,
        "payload": payload,
        "state": "pending",
        "attempts": 0,
        "not_before": not_before or utcnow(),
        "created_at": utcnow(),
        "last_error": "",
    }
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(Outbox).values(**values).on_conflict_do_nothing(index_elements=["key"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(Outbox).values(**values).on_conflict_do_nothing(index_elements=["key"])
    else:  # pragma: no cover - only the two supported backends
        stmt = insert(Outbox).values(**values)
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
