"""What the benchmarks share: a temporary PostgreSQL database, timing by median, and the Figure each
benchmark hands to bench/run_all.py's summary table. The data builders stay with the benchmark that
introduced them (bench/digest.py's `build`, bench/ledger.py's `make_ledger`) and are imported from there."""

from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import make_engine

PG_DEFAULT = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its target. `higher_is_better`: a rate (target is a floor) rather than
    a duration or a size (target is a ceiling)."""

    name: str
    measured: float
    target: float
    unit: str
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        """How the measurement stands to the target: above 1 means the target is met with that margin."""
        if self.higher_is_better:
            return self.measured / self.target if self.target else 0.0
        return self.target / self.measured if self.measured else float("inf")

    @property
    def passed(self) -> bool:
        return self.measured >= self.target if self.higher_is_better else self.measured <= self.target


def print_figures(figures: list[Figure], title: str = "") -> None:
    if title:
        print(title)
    rows = [("figure", "target", "measured", "ratio", "")]
    for f in figures:
        sign = "≥" if f.higher_is_better else "≤"
        rows.append((f.name, f"{sign} {_num(f.target)} {f.unit}", f"{_num(f.measured)} {f.unit}",
                     f"{f.ratio:.2f}", "pass" if f.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for n, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


async def median_seconds(step: Callable[[], Awaitable[object]], runs: int) -> float:
    """The median wall time of `runs` calls (the machine is shared: the median shrugs off a stray pause)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def catch_up_sequences(maker: async_sessionmaker[AsyncSession]) -> None:
    """After a bulk insert with explicit ids (bench/digest.py's builder), move PostgreSQL's id sequences
    past them, so the application's own inserts get fresh ids. Nothing to do on SQLite."""
    async with maker() as s:
        if s.get_bind().dialect.name != "postgresql":
            return
        for table in ("counties", "people", "projects", "milestones", "reports", "changes"):
            await s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"GREATEST((SELECT max(id) FROM {table}), 1))"))
        await s.commit()


def pg_answers(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), timeout=1):
            return True
    except OSError:
        return False


async def _pg_admin(url: str, sql: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@asynccontextmanager
async def pg_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh database on the server `admin_url` points at, dropped afterwards; yields its URL."""
    name = f"qs_bench_{uuid.uuid4().hex[:8]}"
    await _pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
