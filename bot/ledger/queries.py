"""The ledger's figures per county and for the city, counted in the database (GROUP BY), for
`qingshui stats` and the weekly digest alike."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.rates import Totals
from bot.domain.states import ProjectStatus
from bot.store.models import County, Project

_COMPLETED = func.coalesce(func.sum(case((Project.status == ProjectStatus.COMPLETED, 1), else_=0)), 0)
_STARTED = func.coalesce(
    func.sum(case((Project.status.in_((ProjectStatus.STARTED, ProjectStatus.COMPLETED)), 1), else_=0)), 0)


@dataclass(frozen=True)
class CountyFigures:
    county_id: int
    name: str
    sort_order: int
    totals: Totals

    @property
    def total(self) -> int:
        return self.totals.total

    @property
    def completed(self) -> int:
        return self.totals.completed

    @property
    def started(self) -> int:
        """Started or completed, as the programme counts it (开工)."""
        return self.totals.started

    @property
    def not_started(self) -> int:
        return self.totals.not_started

    @property
    def completion_rate(self) -> int:
        return self.totals.completion_rate

    @property
    def start_rate(self) -> int:
        return self.totals.start_rate


async def county_figures(session: AsyncSession) -> list[CountyFigures]:
    """Every county in sort order, with its totals (a county without projects shows zeros)."""
    query = (
        select(County.id, County.name, County.sort_order, func.count(Project.id), _COMPLETED, _STARTED)
        .outerjoin(Project, Project.county_id == County.id)
        .group_by(County.id, County.name, County.sort_order)
        .order_by(County.sort_order, County.name)
    )
    return [
        CountyFigures(cid, name, order, Totals(total=int(total), completed=int(done), started=int(started)))
        for cid, name, order, total, done, started in await session.execute(query)
    ]


async def city_figures(session: AsyncSession, *, county_id: int | None = None) -> Totals:
    """The whole city's totals (or one county's, with `county_id`)."""
    query = select(func.count(Project.id), _COMPLETED, _STARTED)
    if county_id is not None:
        query = query.where(Project.county_id == county_id)
    total, done, started = (await session.execute(query)).one()
    return Totals(total=int(total), completed=int(done), started=int(started))
