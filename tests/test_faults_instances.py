"""Two `qingshui run` instances serving one bot: one PostgreSQL, one Redis, webhook mode behind a
loopback round-robin balancer (each update goes to the next instance).

- both run their scheduler and `jobs run` is run twice for the same moment: every notification once,
  while both senders drain the outbox at the same time;
- an update delivered twice (once to each instance) is applied once; a guided dialog hops between
  the instances step by step (its state is in Redis);
- the scheduler lease holder is SIGKILLed: the other instance takes the lease over within seconds
  (LEASE_SECONDS=5) and catches up (a leader added meanwhile gets this week's digest), and keeps
  answering the chat."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.lease import SCHEDULER_LEASE
from bot.store.models import Lease, Person, Project, utcnow
from tests.conftest import REDIS_URL, need_redis
from tests.faults import (
    RoundRobin,
    Service,
    count_unsent,
    deliveries,
    free_port,
    fresh_pg_database,
    hold_scheduler_lease,
    let_go_scheduler_lease,
    outbox_rows,
    refused,
    reports_of,
    said_to,
    seed_people,
    service_env,
    services,
    wait_until,
    webhook_settings,
)
from tests.test_e2e_chat import Chat
from tests.test_faults_waves import queue_reminders

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

BOT_TOKEN = "4242:FAULTS"  # its own bot id, so its Redis keys (qingshui:4242:…) are its own
WAIT = 90.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


async def forget_dialogs() -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match="qingshui:4242:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def pid_of(sender_name: str | None) -> int | None:
    """Senders and lease holders are named host:pid:random."""
    return int(sender_name.split(":")[1]) if sender_name else None


async def test_two_instances_share_one_bot_and_survive_the_lease_holder(pg_url: str, tmp_path: Path) -> None:
    need_redis()
    await forget_dialogs()
    engine = make_engine(pg_url)
    db = make_sessionmaker(engine)
    ports = [free_port(), free_port()]
    balancer = await RoundRobin([f"http://127.0.0.1:{port}/telegram" for port in ports]).start()
    try:
        await two_instances(db, pg_url, tmp_path, balancer, ports)
    finally:
        await balancer.stop()
        await engine.dispose()
        await forget_dialogs()


async def two_instances(
    db: async_sessionmaker[AsyncSession], pg_url: str, tmp_path: Path, balancer: RoundRobin, ports: list[int]
) -> None:
    async with FakeTelegram() as fake, services() as start:
        contacts = await seed_people(db, fake, role="contact", count=80, first_telegram_id=100_000, reported=True)
        leaders = await seed_people(db, fake, role="leader", count=20, first_telegram_id=200_000)
        await hold_scheduler_lease(db)  # until both are up
        instances: list[Service] = []
        for name, port in zip(("a", "b"), ports, strict=True):
            env = service_env(pg_url, tmp_path, fake, bot_token=BOT_TOKEN, redis_url=REDIS_URL, send_rate_global=20,
                              digest_weekday=0, digest_time="00:00", **webhook_settings(port, balancer.url))
            instances.append(await start(name, env, tmp_path / name))
        await asyncio.gather(*(instance.ready() for instance in instances))

        def logs() -> str:
            return "\n".join(instance.log() for instance in instances)

        # the same jobs for the same moment: `jobs run reminders` twice at once, and both schedulers
        queued = await asyncio.gather(*(queue_reminders(db, pg_url, tmp_path) for _ in range(2)))
        assert sum(queued) == len(contacts.telegram_ids)
        await let_go_scheduler_lease(db)

        async def digests_queued_and_all_sent() -> bool:
            rows = await outbox_rows(db, "digest")
            return len({r.chat_id for r in rows}) == len(leaders.telegram_ids) and await count_unsent(db) == 0

        await wait_until(digests_queued_and_all_sent, WAIT, "the digest and the reminders sent", every=0.2, log=logs)
        rows = await outbox_rows(db)
        assert set(deliveries(fake, rows).values()) == {1}  # every notification once
        assert "joins 1 others" in logs()  # the two senders were draining the outbox at the same time

        # an update delivered twice, once to each instance, is applied once
        contact = contacts.telegram_ids[0]
        async with db() as s:
            county_id = await s.scalar(select(Person.county_id).where(Person.telegram_id == contact))
            codes = list(await s.scalars(select(Project.code).where(Project.county_id == county_id)
                                         .order_by(Project.code)))
        chat = Chat(fake, contact)
        before = len(fake.sent)
        update = fake.send_text(contact, f"{codes[0]} 80%")
        await wait_until(lambda: f"已保存 {codes[0]}" in said_to(fake, contact, before), WAIT, "the confirmation")
        fake.deliver_again(update)
        await fake.wait_idle(quiet=0.3, timeout=WAIT)
        assert said_to(fake, contact, before).count("已保存") == 1
        assert f"update {update['update_id']} delivered again: dropped" in logs()
        assert [r.progress for r in await reports_of(db, codes[0]) if r.person_id] == [80]

        # a guided dialog whose steps land on alternate instances
        step = await chat.says(f"/report {codes[1]}")
        step = await chat.taps(step[-1], "已开工")
        step = await chat.says("75")
        for _ in range(4):  # investment, problems, next steps, photos
            step = await chat.taps(step[-1], "跳过")
        await chat.taps(step[-1], "确认保存")
        assert [r.progress for r in await reports_of(db, codes[1]) if r.person_id] == [75]
        assert all(balancer.served[backend] >= 3 for backend in balancer.backends)

        # the lease holder dies; the other takes over and catches up
        async with db() as s:
            holder = pid_of(await s.scalar(select(Lease.holder).where(Lease.name == SCHEDULER_LEASE)))
        dead = next(instance for instance in instances if instance.pid == holder)
        survivor = next(instance for instance in instances if instance.pid != holder)
        await dead.kill()
        newcomer = await seed_people(db, fake, role="leader", count=1, first_telegram_id=290_000)  # due a digest

        async def survivor_holds_the_lease() -> bool:
            async with db() as s:
                lease = await s.get(Lease, SCHEDULER_LEASE, populate_existing=True)
                return lease is not None and pid_of(lease.holder) == survivor.pid and lease.expires_at > utcnow()

        await wait_until(survivor_holds_the_lease, 30, "the survivor to take the lease over", log=survivor.log)
        reader = newcomer.telegram_ids[0]
        await wait_until(lambda: len(fake.messages_to(reader)) >= 3, WAIT, "the newcomer's digest", log=survivor.log)
        assert {r.method for r in fake.messages_to(reader)} == {"sendMessage", "sendPhoto", "sendDocument"}

        async def all_sent() -> bool:  # in the week after a month's deadline the digest also carries its bulletin
            return {r.state for r in await outbox_rows(db)} == {"sent"}

        await wait_until(all_sent, WAIT, "the rest of the newcomer's digest", log=survivor.log)
        assert codes[0] in "\n".join(r.text or "" for r in await chat.says("/list"))  # the chat goes on

        # nothing was sent twice, before or after the takeover (nothing was in flight at the kill)
        rows = await outbox_rows(db)
        assert {r.state for r in rows} == {"sent"} and set(deliveries(fake, rows).values()) == {1}
        assert len([r for r in rows if r.kind == "digest" and r.key.endswith(":0")]) == len(leaders.telegram_ids) + 1
    assert refused(fake) == []
