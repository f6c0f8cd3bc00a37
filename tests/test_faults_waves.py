"""Notification waves under faults, with the service (`python -m bot run`) as a real process.

- a reminder wave to hundreds of contacts, the service SIGKILLed while sending, then restarted:
  every contact gets their reminder once, bar the messages that were in flight at the kill;
- the weekly digest (text, chart, workbook) to dozens of leaders, queued by the service's own
  scheduler, SIGKILLed while sending (PostgreSQL): the same, each leader's parts in order, and the
  restarted service's catch-up queues no second digest;
- a storm of 429s, 5xx and timeouts from the Bot API during a wave: after it calms, every message
  is delivered, none twice.

A killed sender's claims lapse after minutes; the tests move them into the past instead of waiting
(tests.faults.after_the_kill), as they move a failed message's backoff."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.fake_telegram import FakeTelegram
from bot.domain.cycle import cycle_for
from bot.domain.periods import at_local, period_of, previous_period
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Outbox, utcnow
from bot.store.outbox import EXPIRES_AT
from jobs.base import JobContext
from jobs.registry import run_job
from tests.conftest import make_settings
from tests.faults import (
    SHOWN,
    AtTheKill,
    after_the_kill,
    count_unsent,
    deliveries,
    fresh_pg_database,
    hold_scheduler_lease,
    in_chat_order,
    outbox_rows,
    refused,
    seed_people,
    service_env,
    services,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RATE = 50  # messages a second: a wave of a few hundred takes several seconds, time enough to kill it
WAIT = 90.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


def sent_count(fake: FakeTelegram) -> int:
    return sum(1 for r in fake.sent if r.method in SHOWN)


async def queue_reminders(db: async_sessionmaker[AsyncSession], url: str, data_dir: Path) -> int:
    """`jobs run reminders` for last month's reminder moment: every contact is missing every update.

    Last month's deadline is past on the real clock the services run on, so its reminders would expire
    unsent (README "Notifications"); these tests are about delivering a wave, so its expiry is lifted."""
    settings = make_settings(url, data_dir, quiet_hours="")
    cycle = cycle_for(previous_period(period_of(utcnow(), settings.tz)), settings)
    at = at_local(cycle.reminder_day, settings.reminder_clock, settings.tz)
    async with db() as s:
        queued = (await run_job(s, "reminders", at, JobContext.from_settings(settings))).queued
        for row in await s.scalars(select(Outbox).where(Outbox.kind == "reminder", Outbox.state == "pending")):
            row.payload = {k: v for k, v in row.payload.items() if k != EXPIRES_AT}
        await s.commit()
    return queued


def check_once(fake: FakeTelegram, rows: list[Outbox], kill: AtTheKill) -> None:
    """Every row delivered; a row delivered twice only if it was in flight when the sender died."""
    got = deliveries(fake, rows)
    missing = [row_id for row_id, n in got.items() if n == 0]
    twice = [row_id for row_id, n in got.items() if n > 1]
    assert missing == [], f"never delivered: {missing}"
    assert max(got.values()) <= 2 and set(twice) <= set(kill.claimed), (twice, kill)
    assert len(twice) <= kill.in_flight, (twice, kill)


async def test_a_reminder_wave_killed_midway_reaches_everyone_once(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    db = make_sessionmaker(engine)
    async with FakeTelegram() as fake, services() as start:
        contacts = 200
        await seed_people(db, fake, role="contact", count=contacts, first_telegram_id=100_000)
        await hold_scheduler_lease(db)  # only the sender under test: another instance runs the jobs
        assert await queue_reminders(db, sqlite_url, tmp_path) == contacts
        env = service_env(sqlite_url, tmp_path, fake, send_rate_global=RATE)

        first = await (await start("first", env, tmp_path / "run")).ready()
        await wait_until(lambda: sent_count(fake) >= contacts // 3, WAIT, "a third of the wave", log=first.log)
        await first.kill()
        kill = await after_the_kill(db, fake)
        assert sent_count(fake) < contacts  # killed in the middle of it

        second = await (await start("second", env, tmp_path / "run")).ready()

        async def all_sent() -> bool:
            return await count_unsent(db) == 0

        await wait_until(all_sent, WAIT, "the rest of the wave", every=0.2, log=second.log)
        rows = await outbox_rows(db, "reminder")
    await engine.dispose()
    assert len(rows) == contacts and {r.state for r in rows} == {"sent"}
    check_once(fake, rows, kill)
    assert refused(fake) == []


async def test_a_digest_killed_midway_reaches_every_leader_once_in_order(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    db = make_sessionmaker(engine)
    async with FakeTelegram() as fake, services() as start:
        leaders = 60
        await seed_people(db, fake, role="leader", count=leaders, first_telegram_id=200_000, status="completed")
        # this week's digest is due (Monday 00:00 has passed whatever the day): the scheduler queues it
        env = service_env(pg_url, tmp_path, fake, send_rate_global=RATE, digest_weekday=0, digest_time="00:00")

        first = await (await start("first", env, tmp_path / "run")).ready()
        await wait_until(lambda: sent_count(fake) >= leaders, WAIT, "a third of the digest", log=first.log)
        await first.kill()
        kill = await after_the_kill(db, fake)
        queued = await outbox_rows(db, "digest")
        assert sent_count(fake) < len(queued)

        second = await (await start("second", env, tmp_path / "run")).ready()

        async def all_sent() -> bool:
            return await count_unsent(db) == 0

        await wait_until(all_sent, WAIT, "the rest of the digest", every=0.2, log=second.log)
        # the restarted service took the scheduler lease over and caught up: nothing was due any more
        await wait_until(lambda: "job digest at" in second.log(), WAIT, "the catch-up", log=second.log)
        rows = await outbox_rows(db, "digest")
    await engine.dispose()
    assert [r.id for r in rows] == [r.id for r in queued]  # no second digest
    assert {r.method for r in rows} == {"message", "photo", "document"}
    assert len({r.chat_id for r in rows}) == leaders and {r.state for r in rows} == {"sent"}
    check_once(fake, rows, kill)
    assert in_chat_order(fake, rows)
    assert refused(fake) == []


async def test_a_storm_of_429_5xx_and_timeouts_delays_but_neither_loses_nor_doubles(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    db = make_sessionmaker(engine)
    async with FakeTelegram() as fake, services() as start:
        contacts = 120
        await seed_people(db, fake, role="contact", count=contacts, first_telegram_id=300_000)
        await hold_scheduler_lease(db)
        assert await queue_reminders(db, sqlite_url, tmp_path) == contacts
        fake.set_storm(0.4, kinds=("429", "500", "502", "timeout"), seed=5, retry_after=1, hang_seconds=1.0,
                       methods=["sendMessage"])
        env = service_env(sqlite_url, tmp_path, fake, send_rate_global=RATE)
        service = await (await start("service", env, tmp_path / "run")).ready()

        def stormed() -> bool:
            return all(fake.counters[f"storm_{kind}"] for kind in ("429", "500", "502", "timeout"))

        await wait_until(stormed, WAIT, "429s, 5xx and timeouts", log=service.log)
        fake.calm()
        # messages that met a 5xx or a timeout wait out a backoff of 30 s and more: move it on
        async with db() as s:
            await s.execute(update(Outbox).where(Outbox.state == "pending").values(not_before=utcnow()))
            await s.commit()

        async def all_sent() -> bool:
            return await count_unsent(db) == 0

        await wait_until(all_sent, WAIT, "the wave after the storm", every=0.2, log=service.log)
        rows = await outbox_rows(db, "reminder")
    await engine.dispose()
    assert {r.state for r in rows} == {"sent"}
    assert any(r.attempts > 1 for r in rows)  # some were retried
    assert set(deliveries(fake, rows).values()) == {1}  # everyone once
