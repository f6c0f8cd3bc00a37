"""Small ledger files for the ledger tests, written the way people write them (openpyxl, csv)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import Change, County, Milestone, Project

HEADERS = ["项目编号", "项目名称", "县区", "类别", "责任单位", "计划开工", "计划完工", "总投资(万元)", "状态",
           "形象进度(%)", "已完成投资(万元)", "实际开工", "实际完工", "备注"]
MS_HEADERS = ["项目编号", "节点名称", "计划完成", "实际完成"]
NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)  # 10:00 in Jinzhong
D = dt.date.fromisoformat


def project(code: str = "JZ-001", **overrides: Any) -> list[Any]:
    """A row under HEADERS: a started project in 祁县, consistent unless overridden."""
    values: dict[str, Any] = {
        "项目编号": code, "项目名称": f"祁县{code}雨污分流改造工程", "县区": "祁县", "类别": "雨污分流改造",
        "责任单位": "祁县住建局", "计划开工": D("2026-01-01"), "计划完工": D("2026-12-31"),
        "总投资(万元)": 1200, "状态": "已开工", "形象进度(%)": 50, "已完成投资(万元)": 600,
        "实际开工": D("2026-01-10"), "实际完工": None, "备注": "",
    }
    values.update(overrides)
    return [values[h] for h in HEADERS]


def write_xlsx(
    path: Path,
    rows: Sequence[Sequence[Any]],
    *,
    headers: Sequence[str] = HEADERS,
    milestones: Sequence[Sequence[Any]] | None = None,
    ms_headers: Sequence[str] = MS_HEADERS,
    sheet: str = "台账",
    ms_sheet: str = "节点",
    above: Sequence[Sequence[Any]] = (),
) -> Path:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet
    for row in [*above, list(headers), *rows]:
        ws.append(list(row))
    if milestones is not None:
        ms = book.create_sheet(ms_sheet)
        for row in [list(ms_headers), *milestones]:
            ms.append(list(row))
    book.save(path)
    return path


def write_csv(path: Path, rows: Sequence[Sequence[Any]], *, headers: Sequence[str] = HEADERS,
              encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row])
    return path


async def seed_counties(session: AsyncSession, *names: str) -> None:
    for order, name in enumerate(names or ("祁县", "平遥县", "介休市"), 1):
        session.add(County(name=name, sort_order=order))
    await session.commit()


async def ledger_state(session: AsyncSession) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Everything an import may change, to compare before and after."""
    projects = [
        (p.code, p.name, p.county_id, p.category, p.unit, p.planned_start, p.planned_finish,
         None if p.investment is None else float(p.investment), p.status, p.progress,
         None if p.investment_done is None else float(p.investment_done), p.actual_start, p.actual_finish,
         p.notes or "")
        for p in await session.scalars(select(Project).order_by(Project.code).execution_options(populate_existing=True))
    ]
    milestones = [
        tuple(r) for r in await session.execute(
            select(Project.code, Milestone.name, Milestone.due, Milestone.done)
            .join(Project, Project.id == Milestone.project_id).order_by(Project.code, Milestone.name)
        )
    ]
    changes = len(list(await session.scalars(select(Change.id))))
    return projects, milestones, changes
