"""The whole-ledger read (bot.ledger.scan) loads only the milestones a light can look at, and the lights it
gives are exactly those of each project read whole, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gc
import sys
import weakref

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.config import Settings
from bot.domain.lights import LightRules, assess
from bot.ledger.scan import _malloc_trim, assess_all, give_memory_back, load_project_facts
from bot.services.project_views import state_of
from bot.store.models import Milestone, Project
from tests import factories

RULES = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]  # the defaults
D = dt.date

MILESTONES = (  # name, due, done
    ("设计批复", D(2026, 2, 1), D(2026, 1, 20)),  # reached early
    ("招标完成", D(2026, 3, 1), D(2026, 3, 20)),  # reached late
    ("管网铺设过半", D(2026, 5, 31), None),  # open, due the day of the first check
    ("主体完工", D(2026, 5, 20), None),  # open, overdue by then
    ("通水验收", D(2026, 3, 15), None),  # open, long overdue
    ("资料归档", None, None),  # open, no due date
    ("竣工", D(2026, 11, 30), None),  # open, not yet due
)


async def test_only_overdue_milestones_are_loaded_and_lights_match_the_whole_project(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as s:
        qixian = await factories.county(s)
        pingyao = await factories.county(s, "平遥县", 1)
        await factories.project(s, qixian, "JZ-001", milestones=MILESTONES)
        await factories.project(s, qixian, "JZ-002", status="not_started", progress=0,
                                milestones=MILESTONES[:3])
        await factories.project(s, pingyao, "JZ-003", status="completed", progress=100, milestones=MILESTONES)
        await factories.project(s, pingyao, "JZ-004", planned_start=None, planned_finish=None)
        await s.commit()

    for today in (D(2026, 5, 31), D(2026, 6, 1), D(2027, 1, 5)):
        async with sessionmaker() as s:
            facts = await load_project_facts(s, today)
            whole = {p.id: p for p in await s.scalars(select(Project).options(selectinload(Project.milestones)))}
            by_name = {(m.project_id, m.name): m.id for m in await s.scalars(select(Milestone))}
        assert [f.code for f in facts] == ["JZ-001", "JZ-002", "JZ-003", "JZ-004"]
        lights = assess_all(facts, today, RULES)
        for fact in facts:
            full = assess(state_of(whole[fact.id]), today, RULES)
            assert lights[fact.id] == full, (today, fact.code)  # same light, same reasons
            loaded = [ms.name for ms in fact.state.milestones]
            overdue = sorted((m for m in whole[fact.id].milestones if m.done is None and m.due and m.due < today),
                             key=lambda m: m.due)
            assert loaded == [m.name for m in overdue], (today, fact.code)
            assert list(fact.milestone_ids) == [by_name[fact.id, name] for name in loaded]

    async with sessionmaker() as s:
        june = {f.code: [ms.name for ms in f.state.milestones] for f in await load_project_facts(s, D(2026, 6, 1))}
        county = await load_project_facts(s, D(2026, 6, 1), qixian.id)
    assert june["JZ-001"] == ["通水验收", "主体完工", "管网铺设过半"]  # oldest first; reached, undated, not due: out
    assert june["JZ-002"] == ["管网铺设过半"]
    assert june["JZ-004"] == []
    assert [f.code for f in county] == ["JZ-001", "JZ-002"]
    assert [ms.name for ms in county[0].state.milestones] == june["JZ-001"]


def test_memory_is_given_back_after_a_job() -> None:
    """What a job over the whole ledger left in reference cycles is collected at once, and on glibc (this
    machine, the deployment's Debian) the freed heap goes back to the system: the scheduler calls this after
    every job (bench/memory.py measures the resident size)."""
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    enabled = gc.isenabled()
    gc.disable()
    try:
        nodes = [Node() for _ in range(1000)]
        watched = weakref.ref(nodes[0])
        del nodes
        assert watched() is not None  # left for the collector
        give_memory_back()
        assert watched() is None
    finally:
        if enabled:
            gc.enable()
    if sys.platform.startswith("linux"):
        assert _malloc_trim() is not None
