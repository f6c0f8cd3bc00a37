"""The weekly digest's figures: gathered in a few set-based queries, then computed per scope (the city,
one county) by pure functions.

What "since last week" compares with: the figures stored (table `snapshots`) by the latest digest
built at least SNAPSHOT_MIN_AGE_DAYS days before; without one, the digest says it is the first.
Projects newly started or completed are those whose status moved across that same window (from the
dossier's status changes, so a change undone within the window does not count). The month's 骏马 /
蜗牛 (fastest / slowest county) are ranked by the progress points the county's projects gained this
month, from the dossier's progress changes (an undo counts against them; a project's creation by an
import is not progress).

Totals per county come from bot.ledger.queries.county_figures, the GROUP BY that `qingshui stats`
prints, so the digest and the command line always agree.

This module holds the queries; the plain data they fill and the pure figures are
bot/services/digest_figures.py (re-exported here, see __all__).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.lights import LightRules
from bot.domain.periods import parse_period, period_of
from bot.ledger.queries import county_figures
from bot.ledger.scan import assess_all, load_project_facts
from bot.services.digest_figures import (
    CITY,
    FIRST_WINDOW_DAYS,
    CountyRow,
    Figures,
    LedgerData,
    MissingRow,
    PreviousFigures,
    ProjectLine,
    StatusChange,
    county_rows,
    county_scope,
    fastest_and_slowest,
    figures_for,
    light_counts,
    ranked,
    snapshot_figures,
    status_at,
    sum_totals,
)
from bot.services.reports import reported_project_ids
from bot.store.models import Change, Person, Snapshot

SNAPSHOT_MIN_AGE_DAYS = 6  # "last week": the latest digest at least this many days older


# --- queries ----------------------------------------------------------------------------------


def month_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    first = parse_period(period_of(now, tz))
    return dt.datetime.combine(first, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


async def progress_gained(session: AsyncSession, since: dt.datetime) -> dict[int, int]:
    """Progress points each project gained since `since` (net of undos), from the dossier.

    A range on changes(at): the cost follows this month's changes, not the whole history."""
    query = select(Change.project_id, Change.old, Change.new).where(
        Change.at >= since, Change.field == "progress", Change.source != "create"
    )
    gained: dict[int, int] = defaultdict(int)
    for project_id, old, new in await session.execute(query):
        gained[project_id] += int(new or 0) - int(old or 0)
    return dict(gained)


async def status_changes(session: AsyncSession, since: dt.datetime) -> list[StatusChange]:
    query = (
        select(Change.project_id, Change.at, Change.old, Change.new)
        .where(Change.at > since, Change.field == "status", Change.source != "create")
        .order_by(Change.at, Change.id)
    )
    return [StatusChange(pid, at, old, new) for pid, at, old, new in await session.execute(query)]


async def contacts_by_county(session: AsyncSession) -> dict[int, list[str]]:
    rows = await session.execute(
        select(Person.county_id, Person.name)
        .where(Person.role == "contact", Person.county_id.is_not(None), Person.telegram_id.is_not(None))
        .order_by(Person.id)
    )
    contacts: dict[int, list[str]] = defaultdict(list)
    for county_id, name in rows:
        contacts[county_id].append(name)
    return dict(contacts)


async def previous_snapshots(session: AsyncSession, today: dt.date) -> dict[str, PreviousFigures]:
    """Per scope, the latest snapshot at least SNAPSHOT_MIN_AGE_DAYS days before `today`."""
    cutoff = today - dt.timedelta(days=SNAPSHOT_MIN_AGE_DAYS)
    latest = (
        select(Snapshot.scope, func.max(Snapshot.taken_on).label("taken_on"))
        .where(Snapshot.taken_on <= cutoff)
        .group_by(Snapshot.scope)
        .subquery()
    )
    rows = await session.execute(
        select(Snapshot.scope, Snapshot.taken_on, Snapshot.figures)
        .join(latest, and_(Snapshot.scope == latest.c.scope, Snapshot.taken_on == latest.c.taken_on))
    )
    found = {}
    for scope, taken_on, figures in rows:
        stamp = figures.get("taken_at")
        taken_at = (dt.datetime.fromisoformat(stamp) if stamp
                    else dt.datetime.combine(taken_on, dt.time(0), tzinfo=dt.UTC))
        found[scope] = PreviousFigures(taken_at, figures)
    return found


async def gather(session: AsyncSession, now: dt.datetime, tz: ZoneInfo, rules: LightRules) -> LedgerData:
    """Read everything the digests need at `now`: a handful of queries whatever the ledger's size."""
    today = now.astimezone(tz).date()
    period = period_of(now, tz)
    facts = await load_project_facts(session)
    previous = await previous_snapshots(session, today)
    window = min([p.taken_at for p in previous.values()] + [now - dt.timedelta(days=FIRST_WINDOW_DAYS)])
    counties = await county_figures(session)
    return LedgerData(
        now=now, period=period, counties=[(c.county_id, c.name) for c in counties],
        county_totals={c.county_id: c.totals for c in counties}, facts=facts,
        assessments=assess_all(facts, today, rules),
        reported=frozenset(await reported_project_ids(session, period)),
        gained=await progress_gained(session, month_start(now, tz)),
        status_changes=await status_changes(session, window),
        contacts=await contacts_by_county(session),
        previous=previous,
    )


async def save_snapshot(session: AsyncSession, figures: Figures, now: dt.datetime) -> None:
    """Store the figures the digest showed (one row per scope and day; a rebuild the same day replaces it)."""
    values = {"scope": figures.scope, "taken_on": figures.today, "figures": snapshot_figures(figures, now)}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Snapshot).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["scope", "taken_on"],
                                                     set_={"figures": stmt.excluded.figures}))


async def unreachable_people(session: AsyncSession, counties: Mapping[int, str]) -> list[dict[str, Any]]:
    """People the bot cannot write to (blocked it, deleted their account): for the admins' digest."""
    rows = await session.scalars(select(Person).where(Person.reachable.is_(False)).order_by(Person.id))
    return [{"name": p.name, "role": p.role, "county": counties.get(p.county_id) if p.county_id else None,
             "reason": p.unreachable_reason} for p in rows]


__all__ = [
    "CITY",
    "CountyRow",
    "Figures",
    "LedgerData",
    "MissingRow",
    "PreviousFigures",
    "ProjectLine",
    "StatusChange",
    "county_rows",
    "county_scope",
    "fastest_and_slowest",
    "figures_for",
    "gather",
    "light_counts",
    "month_start",
    "previous_snapshots",
    "progress_gained",
    "ranked",
    "save_snapshot",
    "snapshot_figures",
    "status_at",
    "status_changes",
    "sum_totals",
    "unreachable_people",
]
