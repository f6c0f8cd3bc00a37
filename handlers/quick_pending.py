"""One-message reports waiting for a button (handlers/quick_report.py), kept in the person's dialog data
(the database or Redis) so they survive a restart: under "quick", by a short random token the buttons
carry, the last KEEP_PENDING; and under "albums", what the first photo of an album became (a waiting
report's token, or the saved report), so the album's further photos join it."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from aiogram.fsm.context import FSMContext

from bot.services.reports import ReportInput
from handlers.photos import as_dict, from_dicts

KEEP_PENDING = 10  # reports waiting for a button, per person
KEEP_ALBUMS = 5


def to_pending(data: ReportInput) -> dict[str, Any]:
    return {
        "status": data.status, "progress": data.progress,
        "investment_done": str(data.investment_done) if data.investment_done is not None else None,
        "milestone_ids": list(data.milestone_ids), "text": data.text, "no_change": data.no_change,
        "photos": [as_dict(p) for p in data.photos],
    }


def from_pending(item: dict[str, Any]) -> ReportInput:
    investment = item.get("investment_done")
    return ReportInput(
        status=item.get("status"), progress=item.get("progress"),
        investment_done=Decimal(investment) if investment is not None else None,
        milestone_ids=tuple(item.get("milestone_ids") or ()), text=item.get("text") or "",
        no_change=bool(item.get("no_change")), photos=from_dicts(item.get("photos") or []),
    )


async def hold(state: FSMContext, item: dict[str, Any]) -> str:
    data = await state.get_data()
    pending = dict(data.get("quick") or {})
    token = secrets.token_hex(4)
    pending[token] = item
    data["quick"] = dict(list(pending.items())[-KEEP_PENDING:])
    await state.set_data(data)
    return token


async def take(state: FSMContext, token: str) -> dict[str, Any] | None:
    data = await state.get_data()
    pending = dict(data.get("quick") or {})
    item = pending.pop(token, None)
    data["quick"] = pending
    await state.set_data(data)
    return item


async def remember_album(state: FSMContext, group: str | None, value: dict[str, Any]) -> None:
    if not group:
        return
    data = await state.get_data()
    albums = dict(data.get("albums") or {})
    albums[group] = value
    data["albums"] = dict(list(albums.items())[-KEEP_ALBUMS:])
    await state.set_data(data)
