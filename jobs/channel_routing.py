"""Who among the channels (README "Channels") gets what, queued by the jobs in the same transaction as
their Telegram messages: a county channel its county's digest, alerts at every step and (if asked)
the month's reminders; a city channel the city digest and the escalations that reach city leaders.
Keys are `kind:ch<channel>:period:step`, so a second run queues nothing new."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.compose import Step, alert_steps, digest_steps, reminder_steps
from bot.domain.problems import OpenProblem
from bot.store.models import Channel
from bot.store.outbox import channel_key, enqueue_many, row

CITY_STEP = 3  # the escalation step that reaches city leaders (bot.domain.problems.STEP_ROLES)


def channel_rows(channel: Channel, kind: str, period: str, steps: Iterable[Step], not_before: dt.datetime,
                 prefix: str = "", expires_at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Outbox rows for a channel (chat_id 0: no Telegram chat), one per step, in reading order."""
    return [row(key=channel_key(kind, channel.id, period, f"{prefix}{step}"), kind=kind, chat_id=0, person_id=None,
                payload=payload, method=method, not_before=not_before, channel_id=channel.id, expires_at=expires_at)
            for step, method, payload in steps]


async def queue_digests(
    session: AsyncSession, channels: list[Channel], *, figures_of: Callable[[int | None], Any],
    files: Callable[[Any, str], Awaitable[tuple[str | None, str | None]]], week: str, lang: str, limit: int,
    deadline: dt.date, not_before: dt.datetime,
) -> int:
    """This week's digest for each channel: its county's, or the city's."""
    rows: list[dict[str, Any]] = []
    for channel in channels:
        figures = figures_of(channel.county_id)
        chart, ledger = await files(figures, lang)
        steps = digest_steps(channel.kind, lang, f=figures, limit=limit, deadline=deadline, chart=chart, ledger=ledger)
        rows += channel_rows(channel, "digest", week, steps, not_before)
    return await enqueue_many(session, rows) if rows else 0


def alert_audience(channels: list[Channel], county_id: int, kind: str, step: int | str,
                   problem: OpenProblem) -> list[Channel]:
    """The channels an alert message goes to: its county's at every step; the city's once the problem
    reached the city leaders (step 3, and what follows it: turning red, resolved)."""
    reached_city = step == CITY_STEP or (step in ("red", 0) and problem.step >= CITY_STEP)
    return [c for c in channels
            if (c.county_id == county_id) or (c.county_id is None and kind in ("alert", "resolved") and reached_city)]


def alert_rows(channels: list[Channel], *, kind: str, problem: OpenProblem, step: int | str, macro: str,
               view: dict[str, Any], lang: str, not_before: dt.datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for channel in channels:
        steps = alert_steps(channel.kind, lang, a=view, macro=macro)
        rows += channel_rows(channel, kind, str(problem.id), steps, not_before, prefix=f"{step}.")
    return rows


async def queue_reminders(
    session: AsyncSession, channels: list[Channel], *, missing: Callable[[int], list[Any]], counties: dict[int, str],
    period: str, step: int, lang: str, listed: int, deadline: dt.date, not_before: dt.datetime,
    expires_at: dt.datetime | None = None,
) -> int:
    """The month's list of missing projects for each county channel that asked for reminders; like a
    contact's reminder, never sent after the month's deadline day (`expires_at`)."""
    rows: list[dict[str, Any]] = []
    for channel in channels:
        if channel.county_id is None:
            continue
        projects = missing(channel.county_id)
        if not projects:
            continue
        shown = [{"code": p.code, "name": p.name, "status": p.status} for p in projects[:listed]]
        steps = reminder_steps(channel.kind, lang, county=counties.get(channel.county_id, ""), period=period,
                               projects=shown, more=len(projects) - len(shown), deadline=deadline,
                               followup=step > 0)
        rows += channel_rows(channel, "reminder", period, steps, not_before, prefix=f"{step}.", expires_at=expires_at)
    return await enqueue_many(session, rows) if rows else 0
