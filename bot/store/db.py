"""Engine and session factory; every command brings the schema to the newest migration first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_MS = 5000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed transaction
    cur.close()


def make_engine(url: str, *, pool_size: int | None = None, **kwargs: Any) -> AsyncEngine:
    """An engine for `url`; `pool_size` (DB_POOL_SIZE) connections, and half as many again for a moment's
    need (a job beside the chat, a command line run)."""
    parsed = make_url(url)
    if pool_size is not None and "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", pool_size)
        kwargs.setdefault("max_overflow", pool_size // 2)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


async def open_pool(engine: AsyncEngine, connections: int) -> None:
    """On PostgreSQL, open `connections` of the engine's pool now (held together, so they are distinct
    ones): the first updates after a start then do not each wait for a login and the driver's set-up, tens
    of milliseconds each (bench/burst.py). A SQLite connection opens a file in about a millisecond and
    takes a thread of its own: those open when first needed."""
    if engine.dialect.name != "postgresql":
        return
    async with AsyncExitStack() as held:
        for _ in range(connections):
            connection = await held.enter_async_context(engine.connect())
            await connection.execute(text("SELECT 1"))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    script_dir = resources.files("migrations")
    cfg = Config()
    cfg.set_main_option("script_location", str(script_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


async def migrate(url: str) -> None:
    """Upgrade to head. Alembic's async env runs its own loop, so do it in a worker thread."""
    await asyncio.to_thread(_upgrade, url)


@asynccontextmanager
async def open_database(url: str, *, upgrade: bool = True) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if upgrade:
        await migrate(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
