"""Every stored state is a member of its enum (bot/domain/states.py): a project's status, a person's or an
invite's role, a report's status, a problem's light and escalation step, an outbox row's state. The
database itself refuses any other value, on SQLite and PostgreSQL, whoever writes it; a database made
before these checks gains them when it is upgraded, its rows as they were."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import CheckConstraint, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.domain.states import Light, OutboxState, ProblemStep, ProjectStatus, Role
from bot.store.db import alembic_config, make_engine, make_sessionmaker
from bot.store.models import Base, Invite, Outbox, Person, Problem, Project, Report
from tests import factories
from tests.conftest import fresh_pg_database

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)

# table, column, the enum its values come from, values that must be refused
STATE_COLUMNS: list[tuple[str, str, type[Enum], tuple[Any, ...]]] = [
    ("projects", "status", ProjectStatus, ("finished", "COMPLETED", "")),
    ("reports", "status", ProjectStatus, ("done",)),
    ("people", "role", Role, ("boss", "Admin")),
    ("invites", "role", Role, ("guest",)),
    ("problems", "level", Light, ("blue", "")),
    ("problems", "step", ProblemStep, (4, -1)),
    ("outbox", "state", OutboxState, ("lost", "PENDING")),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def scratch_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, free to be downgraded (the shared PostgreSQL one is not)."""
    if request.param == "sqlite":
        path = tmp_path / "qingshui.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    with fresh_pg_database("qs_states") as url:
        yield url


async def _one_row_each(session: AsyncSession) -> dict[str, int]:
    """A row in every table with a state column, by table: the ids."""
    county = await factories.county(session)
    project = await factories.project(session, county, status="started")
    person = await factories.person(session, Role.CONTACT, county)
    invite = Invite(code_hash="0" * 64, role=Role.COUNTY_LEADER, county_id=county.id, expires_at=NOW)
    report = Report(project_id=project.id, person_id=person.id, period="2026-11", status=ProjectStatus.STARTED,
                    progress=60)
    problem = Problem(project_id=project.id, kind="light", level=Light.RED, step=ProblemStep.COUNTY_LEADER,
                      opened_at=NOW, step_at=NOW)
    session.add_all([invite, report, problem])
    # the outbox row in the columns every revision has (a later one adds columns this database may lack)
    outbox_id = (await session.execute(
        insert(Outbox.__table__).values(key=f"reminder:{person.id}:2026-11:0", kind="reminder", chat_id=1001,
                                        person_id=person.id, method="message", payload={"text": "请更新本月进展"},
                                        state=OutboxState.SENT, attempts=0, not_before=NOW, created_at=NOW,
                                        last_error="")
        .returning(Outbox.__table__.c.id))).scalar_one()
    await session.commit()
    return {"projects": project.id, "reports": report.id, "people": person.id, "invites": invite.id,
            "problems": problem.id, "outbox": outbox_id}


async def _set(engine: AsyncEngine, table: str, column: str, row_id: int, value: Any) -> None:
    """Write a value the way any SQL client would: no model, no enum in between."""
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), {"value": value, "id": row_id})


async def _refused(engine: AsyncEngine, table: str, column: str, row_id: int, value: Any) -> bool:
    try:
        await _set(engine, table, column, row_id, value)
    except IntegrityError:
        return True
    return False


async def test_the_database_takes_every_state_and_refuses_anything_else(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            ids = await _one_row_each(session)
        for table, column, enum, bad_values in STATE_COLUMNS:
            for member in enum:
                await _set(engine, table, column, ids[table], member.value)
            for bad in bad_values:
                assert await _refused(engine, table, column, ids[table], bad), f"{table}.{column} = {bad!r}"
        async with engine.connect() as conn:  # a report that states no status is still allowed
            await conn.execute(text("UPDATE reports SET status = NULL"))
    finally:
        await engine.dispose()


async def test_the_code_reads_members_back_and_never_sends_a_stray_value(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            ids = await _one_row_each(session)
        async with make_sessionmaker(engine)() as session:
            project = await session.get_one(Project, ids["projects"])
            problem = await session.get_one(Problem, ids["problems"])
            assert project.status is ProjectStatus.STARTED and project.status == "started"
            assert (await session.get_one(Person, ids["people"])).role in tuple(Role)
            assert problem.level is Light.RED and problem.step is ProblemStep.COUNTY_LEADER and problem.step == 2
            assert await session.scalar(select(Outbox.state).where(Outbox.id == ids["outbox"])) is OutboxState.SENT
            project.status = "finished"  # type: ignore[assignment]
            with pytest.raises(StatementError):
                await session.flush()
    finally:
        await engine.dispose()


async def test_the_models_and_the_migrated_database_name_the_same_checks(db_url: str) -> None:
    declared = {(table.name, c.name) for table in Base.metadata.tables.values()
                for c in table.constraints if isinstance(c, CheckConstraint)}
    assert {(t, f"ck_{t}_{c}") for t, c, _, _ in STATE_COLUMNS} == declared

    def found(conn: Any) -> set[tuple[str, str]]:
        inspector = inspect(conn)
        return {(t, c["name"]) for t in inspector.get_table_names() for c in inspector.get_check_constraints(t)}

    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(found) == declared
    finally:
        await engine.dispose()


async def test_upgrading_a_database_with_data_keeps_its_rows_and_adds_the_checks(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    engine = make_engine(scratch_url)
    try:
        async with make_sessionmaker(engine)() as session:
            ids = await _one_row_each(session)
            # a closed problem beside the open one: the "one open problem" index must stay partial
            session.add(Problem(project_id=ids["projects"], kind="light", level=Light.YELLOW, step=ProblemStep.CONTACT,
                                opened_at=NOW - dt.timedelta(days=60), closed_at=NOW - dt.timedelta(days=30)))
            await session.commit()
        assert await _refused(engine, "people", "role", ids["people"], "boss") is False  # no check before 0003
        await _set(engine, "people", "role", ids["people"], "contact")

        await asyncio.to_thread(command.upgrade, config, "head")

        async with make_sessionmaker(engine)() as session:
            assert (await session.get_one(Project, ids["projects"])).status is ProjectStatus.STARTED
            assert (await session.get_one(Person, ids["people"])).role is Role.CONTACT
            assert (await session.get_one(Invite, ids["invites"])).role is Role.COUNTY_LEADER
            assert (await session.get_one(Report, ids["reports"])).status is ProjectStatus.STARTED
            steps = (await session.execute(select(Problem.level, Problem.step).order_by(Problem.id))).all()
            assert steps == [(Light.RED, ProblemStep.COUNTY_LEADER), (Light.YELLOW, ProblemStep.CONTACT)]
            assert (await session.get_one(Outbox, ids["outbox"])).state is OutboxState.SENT
            # another closed problem for the same project is fine; a second open one is not
            session.add(Problem(project_id=ids["projects"], kind="light", level=Light.YELLOW,
                                opened_at=NOW - dt.timedelta(days=90), closed_at=NOW - dt.timedelta(days=80)))
            await session.commit()
            session.add(Problem(project_id=ids["projects"], kind="light", level=Light.YELLOW, opened_at=NOW))
            with pytest.raises(IntegrityError):
                await session.commit()
        for table, column, _, bad_values in STATE_COLUMNS:
            assert await _refused(engine, table, column, ids[table], bad_values[0]), f"{table}.{column}"
    finally:
        await engine.dispose()


async def test_an_upgrade_meeting_an_unknown_value_names_it_and_changes_nothing(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    engine = make_engine(scratch_url)
    try:
        async with make_sessionmaker(engine)() as session:
            ids = await _one_row_each(session)
        await _set(engine, "people", "role", ids["people"], "boss")
        await _set(engine, "outbox", "state", ids["outbox"], "lost")

        with pytest.raises(RuntimeError) as refused:
            await asyncio.to_thread(command.upgrade, config, "head")
        assert "people.role = 'boss' (1 rows)" in str(refused.value)
        assert "outbox.state = 'lost' (1 rows)" in str(refused.value)
        assert await _refused(engine, "projects", "status", ids["projects"], "finished") is False  # still 0002
        await _set(engine, "projects", "status", ids["projects"], "started")

        await _set(engine, "people", "role", ids["people"], "contact")  # corrected by hand
        await _set(engine, "outbox", "state", ids["outbox"], "dead")
        await asyncio.to_thread(command.upgrade, config, "head")
        assert await _refused(engine, "people", "role", ids["people"], "boss")
    finally:
        await engine.dispose()
