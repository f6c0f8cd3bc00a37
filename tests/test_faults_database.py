"""The database unavailable for a while under a running `qingshui run`: a contact's report gets the
answer that it cannot be saved right now (not silence, not a false confirmation), nothing half-saved
stays behind, and once the database is back the same process saves the resend — no restart.

- SQLite: another connection holds the write lock (BEGIN EXCLUSIVE) on the file;
- PostgreSQL: a loopback TCP proxy in front of the server is cut (listener and every connection
  closed) and restored; the service's scheduler lease is renewed again afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.lease import SCHEDULER_LEASE
from bot.store.models import Lease, utcnow
from tests import factories
from tests.faults import (
    Service,
    TcpProxy,
    fresh_pg_database,
    hold_scheduler_lease,
    refused,
    reports_of,
    said_to,
    service_env,
    services,
    via,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CONTACT = 5001
WAIT = 60.0
CANNOT_SAVE = "过几分钟重新发送"  # help.db_unavailable: "… was not saved. Please send it again in a few minutes."


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


async def seed(url: str) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        qx = await factories.county(s, "祁县")
        await factories.project(s, qx, "JZ-017")
        await factories.person(s, county_row=qx, telegram_id=CONTACT)
        await s.commit()
    await engine.dispose()


async def reports(url: str) -> list[int | None]:
    engine = make_engine(url)
    try:
        return [r.progress for r in await reports_of(make_sessionmaker(engine), "JZ-017")]
    finally:
        await engine.dispose()


async def not_(check: Callable[[], Awaitable[bool]]) -> bool:
    return not await check()


async def says(fake: FakeTelegram, text: str, expect: str, service: Service) -> None:
    since = len(fake.sent)
    fake.send_text(CONTACT, text)
    await wait_until(lambda: expect in said_to(fake, CONTACT, since), WAIT, f"{expect!r} after {text!r}",
                     log=service.log)


async def test_a_locked_sqlite_file_gets_a_cannot_save_answer_then_recovers(sqlite_url: str, tmp_path: Path) -> None:
    await seed(sqlite_url)
    engine = make_engine(sqlite_url)
    await hold_scheduler_lease(make_sessionmaker(engine))
    await engine.dispose()
    async with FakeTelegram() as fake, services() as start:
        fake.user(CONTACT, "王", language_code="zh-hans")
        service = await (await start("service", service_env(sqlite_url, tmp_path, fake), tmp_path / "run")).ready()
        locker = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")  # another program holds the file
            await says(fake, "JZ-017 80%", CANNOT_SAVE, service)
            assert "已保存" not in said_to(fake, CONTACT)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert await reports(sqlite_url) == []
        await says(fake, "JZ-017 80%", "已保存 JZ-017", service)  # the contact sends it again
        assert service.running and await service.terminate() == 0  # the same process throughout
    assert await reports(sqlite_url) == [80]
    assert refused(fake) == []


@pytest.mark.postgres
async def test_a_cut_postgresql_connection_gets_a_cannot_save_answer_then_recovers(
    pg_url: str, tmp_path: Path
) -> None:
    await seed(pg_url)
    host = make_url(pg_url)
    proxy = await TcpProxy((host.host or "127.0.0.1", host.port or 5432)).start()
    through = via(pg_url, proxy.port)
    engine = make_engine(pg_url)  # the test's own view, not through the proxy
    db = make_sessionmaker(engine)

    async def lease_held() -> bool:
        async with db() as s:
            lease = await s.get(Lease, SCHEDULER_LEASE, populate_existing=True)
            return lease is not None and lease.expires_at > utcnow()

    try:
        async with FakeTelegram() as fake, services() as start:
            fake.user(CONTACT, "王", language_code="zh-hans")
            service = await (await start("service", service_env(through, tmp_path, fake), tmp_path / "run")).ready()
            await says(fake, "/list", "JZ-017", service)  # connected through the proxy
            await wait_until(lease_held, WAIT, "the service to take the scheduler lease", log=service.log)
            await proxy.cut()
            await says(fake, "JZ-017 80%", CANNOT_SAVE, service)
            assert "已保存" not in said_to(fake, CONTACT) and await reports(pg_url) == []
            # cut off long enough that its lease (LEASE_SECONDS=5) has lapsed
            await wait_until(lambda: not_(lease_held), WAIT, "the lease to lapse", log=service.log)
            await proxy.restore()
            await says(fake, "JZ-017 80%", "已保存 JZ-017", service)
            # the background recovers too: the scheduler lease is taken and renewed again
            await wait_until(lease_held, WAIT, "the lease to be taken again", log=service.log)
            assert service.running and await service.terminate() == 0
        assert await reports(pg_url) == [80]
        assert refused(fake) == []
    finally:
        await proxy.cut()
        await engine.dispose()
