"""Shared fixtures: a fresh, migrated database on SQLite always and on PostgreSQL when it answers.

With CI=true an unreachable PostgreSQL fails the PostgreSQL tests instead of skipping them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import Base

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _need(service: str, host: str, port: int) -> None:
    if not _answers(host, port):
        if IN_CI:
            pytest.fail(f"{service} at {host}:{port} does not answer, and CI=true requires it")
        pytest.skip(f"{service} at {host}:{port} does not answer")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def need_postgres() -> None:
    _need("PostgreSQL", "127.0.0.1", 5432)


def need_redis() -> None:
    _need("Redis", "127.0.0.1", 6379)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    run_sync(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "qs_test") -> Iterator[str]:
    """A new, migrated PostgreSQL database (other tests share the server); dropped afterwards."""
    need_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    run_sync(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        run_sync(migrate(url))
        yield url
    finally:
        run_sync(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def empty_pg_database(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    """One database per test session, emptied between tests."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL; tests using it run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "qingshui.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("_pg_database")
    await empty_pg_database(url)
    return url


@pytest.fixture
async def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """SQLite only, for tests whose subject is not the database."""
    path = tmp_path / "qingshui.db"
    shutil.copy(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def sessionmaker(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path)


def make_settings(db_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "data_dir": data_dir,
        "bot_token": "123456:TEST",
        "admin_ids": (),
        "quiet_hours": "21:00-08:00",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
