"""Small builders for test data, straight through the ORM."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import County, Milestone, Person, Project


async def county(session: AsyncSession, name: str = "祁县", sort_order: int = 0) -> County:
    row = County(name=name, sort_order=sort_order)
    session.add(row)
    await session.flush()
    return row


async def project(
    session: AsyncSession,
    county_row: County,
    code: str = "JZ-017",
    *,
    name: str = "祁县城区雨污分流改造工程",
    status: str = "started",
    progress: int = 50,
    planned_start: dt.date | None = dt.date(2026, 1, 1),
    planned_finish: dt.date | None = dt.date(2026, 12, 31),
    category: str = "雨污分流改造",
    milestones: tuple[tuple[str, dt.date | None, dt.date | None], ...] = (),
) -> Project:
    row = Project(
        code=code, name=name, county_id=county_row.id, category=category, unit="祁县住建局",
        planned_start=planned_start, planned_finish=planned_finish, investment=Decimal("1200"),
        status=status, progress=progress,
        actual_start=planned_start if status != "not_started" else None,
        actual_finish=planned_finish if status == "completed" else None,
    )
    session.add(row)
    await session.flush()
    for ms_name, due, done in milestones:
        session.add(Milestone(project_id=row.id, name=ms_name, due=due, done=done))
    await session.flush()
    return row


async def person(
    session: AsyncSession,
    role: str = "contact",
    county_row: County | None = None,
    *,
    telegram_id: int | None = 5001,
    name: str = "王联络",
    language: str = "zh",
) -> Person:
    row = Person(telegram_id=telegram_id, name=name, role=role, county_id=county_row.id if county_row else None,
                 language=language)
    session.add(row)
    await session.flush()
    return row
