"""The sender against the fake Bot API: every queued message arrives once, whatever Telegram answers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Outbox, Person
from bot.store.outbox import enqueue, outbox_key
from bot.telegram.sender import Sender, backoff_seconds
from tests import factories
from tests.conftest import make_settings
from tests.sending import Clock, fake_bot

NOON = dt.datetime(2026, 5, 20, 4, 0, tzinfo=dt.UTC)  # 12:00 in Jinzhong: not quiet


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    async with fake_bot() as pair:
        yield pair


async def queue_people(
    sessionmaker: async_sessionmaker[AsyncSession], fake: FakeTelegram, count: int, *, per_person: int = 1
) -> list[Person]:
    """`count` contacts registered with the fake, each with `per_person` queued messages."""
    people: list[Person] = []
    async with sessionmaker() as s:
        qx = await factories.county(s)
        for i in range(count):
            tg_id = 7000 + i
            fake.user(tg_id, first_name=f"联络员{i}")
            who = await factories.person(s, county_row=qx, telegram_id=tg_id, name=f"联络员{i}")
            people.append(who)
            for n in range(per_person):
                await enqueue(
                    s, key=outbox_key("test", who.id, "2026-05", n), kind="test", chat_id=tg_id, person_id=who.id,
                    payload={"text": f"<b>第 {n} 条</b> 给 {i}", "reply_markup": None}, not_before=NOON,
                )
        await s.commit()
    return people


async def outbox_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessionmaker() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


def delivered(fake: FakeTelegram) -> Counter[tuple[int | None, str | None]]:
    return Counter((r.chat_id, r.text) for r in fake.sent if r.is_message)


async def test_queued_messages_arrive_once_with_their_buttons(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    fake.user(9001)
    async with sessionmaker() as s:
        await enqueue(
            s, key="t:1", kind="test", chat_id=9001, person_id=None, not_before=NOON,
            payload={"text": "请报送 <code>JZ-017</code>", "reply_markup": {
                "inline_keyboard": [[{"text": "📝 JZ-017", "callback_data": "p:report:JZ-017:0"}]]}},
        )
        await s.commit()
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON))
    assert await sender.drain_once() == 1
    assert await sender.drain_once() == 0  # nothing left: nothing twice
    [record] = fake.messages_to(9001)
    assert record.text == "请报送 JZ-017"
    assert record.callback_data() == ["p:report:JZ-017:0"]
    [row] = await outbox_rows(sessionmaker)
    assert (row.state, row.attempts, row.message_id, row.sent_at) == ("sent", 1, record.message_id, NOON)


async def test_a_429_waits_retry_after_and_burns_no_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    await queue_people(sessionmaker, fake, 6)
    fake.fail_next(2, status=429, retry_after=1, methods=["sendMessage"])
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON))
    assert await sender.drain_once() == 6
    assert fake.counters["injected_429"] == 2
    assert all(n == 1 for n in delivered(fake).values()) and len(delivered(fake)) == 6
    rows = await outbox_rows(sessionmaker)
    assert [(r.state, r.attempts) for r in rows] == [("sent", 1)] * 6


async def test_a_long_retry_after_gives_the_message_back_for_later(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    await queue_people(sessionmaker, fake, 1)
    fake.fail_next(1, status=429, retry_after=30, methods=["sendMessage"])
    clock = Clock(NOON)
    sender = Sender(bot, sessionmaker, settings, clock=clock)
    assert await sender.drain_once() == 0
    [row] = await outbox_rows(sessionmaker)
    assert (row.state, row.attempts, row.not_before) == ("pending", 0, NOON + dt.timedelta(seconds=30))
    clock.advance(seconds=31)
    fresh = Sender(bot, sessionmaker, settings, clock=clock)  # the first one is paused for 30 real seconds
    assert await fresh.drain_once() == 1
    assert len(fake.messages_to(7000)) == 1


async def test_a_403_marks_the_person_unreachable_and_skips_them_afterwards(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    blocked, fine = await queue_people(sessionmaker, fake, 2, per_person=2)
    fake.block(blocked.telegram_id or 0)
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON))
    assert await sender.drain_once() == 2
    assert len(fake.messages_to(fine.telegram_id or 0)) == 2
    assert fake.messages_to(blocked.telegram_id or 0) == []
    assert fake.counters["forbidden"] == 1  # tried once, then no more calls for them
    async with sessionmaker() as s:
        person = await s.get(Person, blocked.id)
        assert person is not None and person.reachable is False
        assert "blocked" in person.unreachable_reason
        states = {(r.key, r.state, r.last_error) for r in await s.scalars(select(Outbox).where(
            Outbox.person_id == blocked.id))}
        assert {state for _, state, _ in states} == {"dead"}
        assert any(err == "unreachable" for _, _, err in states)
        # a later message for them is dropped without calling Telegram
        await enqueue(s, key="later", kind="test", chat_id=blocked.telegram_id or 0, person_id=blocked.id,
                      payload={"text": "later"}, not_before=NOON)
        await s.commit()
    calls = fake.method_calls["sendMessage"]
    assert await sender.drain_once() == 0
    assert fake.method_calls["sendMessage"] == calls
    async with sessionmaker() as s:
        later = await s.scalar(select(Outbox).where(Outbox.key == "later"))
        assert later is not None and (later.state, later.last_error) == ("dead", "unreachable")


async def test_a_400_is_kept_dead_with_its_reason(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    fake.user(9001)
    async with sessionmaker() as s:
        await enqueue(s, key="bad", kind="test", chat_id=9001, person_id=None, payload={"text": "<b>unclosed"},
                      not_before=NOON)
        await enqueue(s, key="good", kind="test", chat_id=9001, person_id=None, payload={"text": "fine"},
                      not_before=NOON)
        await s.commit()
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON))
    assert await sender.drain_once() == 1
    bad, good = await outbox_rows(sessionmaker)
    assert bad.state == "dead" and "can't parse entities" in bad.last_error
    assert good.state == "sent"
    assert await sender.drain_once() == 0  # a dead message is not tried again


async def test_server_errors_and_timeouts_are_retried_with_backoff_then_delivered(
    sessionmaker: async_sessionmaker[AsyncSession], telegram: tuple[FakeTelegram, Bot], db_url: str, tmp_path: Path
) -> None:
    fake, bot = telegram
    settings = make_settings(db_url, tmp_path, send_max_attempts=5)
    await queue_people(sessionmaker, fake, 1)
    clock = Clock(NOON)
    sender = Sender(bot, sessionmaker, settings, clock=clock, request_timeout=1)
    fake.fail_next(1, status=502, methods=["sendMessage"])
    assert await sender.drain_once() == 0
    [row] = await outbox_rows(sessionmaker)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.not_before == NOON + dt.timedelta(seconds=backoff_seconds(1))
    assert await sender.drain_once() == 0  # not due before the backoff has passed
    clock.advance(seconds=backoff_seconds(1))
    fake.delay_next(1, seconds=3, methods=["sendMessage"], execute=False)  # the request times out
    assert await sender.drain_once() == 0
    clock.advance(seconds=backoff_seconds(2))
    assert await sender.drain_once() == 1
    [row] = await outbox_rows(sessionmaker)
    assert (row.state, row.attempts) == ("sent", 3)
    assert len(fake.messages_to(7000)) == 1


async def test_a_message_failing_every_time_dies_after_the_last_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], telegram: tuple[FakeTelegram, Bot], db_url: str, tmp_path: Path
) -> None:
    fake, bot = telegram
    settings = make_settings(db_url, tmp_path, send_max_attempts=2)
    await queue_people(sessionmaker, fake, 1)
    clock = Clock(NOON)
    sender = Sender(bot, sessionmaker, settings, clock=clock)
    fake.fail_next(5, status=500, methods=["sendMessage"])
    for _ in range(3):
        await sender.drain_once()
        clock.advance(hours=2)
    [row] = await outbox_rows(sessionmaker)
    assert (row.state, row.attempts) == ("dead", 2)
    assert "Internal Server Error" in row.last_error


async def test_a_service_stopped_after_queuing_sends_everything_once_after_restart(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    await queue_people(sessionmaker, fake, 5)
    clock = Clock(NOON)
    # the first service claims a batch and dies before sending any of it
    crashed = Sender(bot, sessionmaker, settings, clock=clock, batch_size=3)
    assert len(await crashed._claim(3)) == 3
    restarted = Sender(bot, sessionmaker, settings, clock=clock)
    assert await restarted.drain_once() == 2  # the unclaimed ones at once
    clock.advance(seconds=restarted.claim_seconds + 1)  # the dead claims expire
    assert await restarted.drain_once() == 3
    assert len(delivered(fake)) == 5 and set(delivered(fake).values()) == {1}
    assert {r.state for r in await outbox_rows(sessionmaker)} == {"sent"}


async def test_a_row_stuck_in_sending_is_resent_once_after_its_claim_expires(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    await queue_people(sessionmaker, fake, 2)
    async with sessionmaker() as s:
        await s.execute(update(Outbox).values(state="sending", claimed_by="gone:1", attempts=1))
        await s.execute(update(Outbox).where(Outbox.chat_id == 7000).values(claimed_until=NOON - dt.timedelta(
            seconds=1)))
        await s.execute(update(Outbox).where(Outbox.chat_id == 7001).values(claimed_until=NOON + dt.timedelta(
            minutes=1)))
        await s.commit()
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON))
    assert await sender.drain_once() == 1
    assert await sender.drain_once() == 0
    assert len(fake.messages_to(7000)) == 1
    assert fake.messages_to(7001) == []  # still claimed by a live sender: left alone
    stuck, live = await outbox_rows(sessionmaker)
    assert (stuck.state, stuck.attempts, stuck.claimed_by) == ("sent", 2, sender.name)
    assert (live.state, live.claimed_by) == ("sending", "gone:1")


async def test_two_senders_draining_one_outbox_send_each_message_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot],
    db_url: str,
) -> None:
    fake, bot = telegram
    await queue_people(sessionmaker, fake, 40, per_person=2)
    other_engine = make_engine(db_url)  # a second process: its own connections
    try:
        clock = Clock(NOON)
        first = Sender(bot, sessionmaker, settings, clock=clock, name="first", batch_size=5)
        second = Sender(bot, make_sessionmaker(other_engine), settings, clock=clock, name="second", batch_size=5)
        counts = await asyncio.gather(first.drain_once(), second.drain_once())
    finally:
        await other_engine.dispose()
    assert sum(counts) == 80
    assert len(delivered(fake)) == 80 and set(delivered(fake).values()) == {1}
    rows = await outbox_rows(sessionmaker)
    assert {r.state for r in rows} == {"sent"}
    assert {r.claimed_by for r in rows} <= {"first", "second"}
    # one chat's two messages leave in the order they were queued
    for chat in range(7000, 7040):
        texts = [r.text for r in fake.messages_to(chat)]
        assert texts == [f"第 0 条 给 {chat - 7000}", f"第 1 条 给 {chat - 7000}"]


async def test_photos_and_documents_are_sent_from_data_dir(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    fake.user(9001)
    (settings.data_dir / "out").mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "out" / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (settings.data_dir / "out" / "ledger.xlsx").write_bytes(b"PK\x03\x04fake")
    async with sessionmaker() as s:
        await enqueue(s, key="photo", kind="digest", chat_id=9001, person_id=None, method="photo",
                      payload={"path": "out/chart.png", "caption": "<b>本周</b>"}, not_before=NOON)
        await enqueue(s, key="doc", kind="digest", chat_id=9001, person_id=None, method="document",
                      payload={"path": "out/ledger.xlsx", "caption": "台账", "filename": "台账.xlsx"},
                      not_before=NOON)
        await enqueue(s, key="missing", kind="digest", chat_id=9001, person_id=None, method="document",
                      payload={"path": "out/gone.xlsx"}, not_before=NOON)
        await s.commit()
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON))
    assert await sender.drain_once() == 2
    photo, document = fake.messages_to(9001)
    assert (photo.method, photo.text) == ("sendPhoto", "本周")
    assert (document.method, document.file_name, document.file_bytes) == ("sendDocument", "台账.xlsx",
                                                                           b"PK\x03\x04fake")
    missing = (await outbox_rows(sessionmaker))[2]
    assert missing.state == "dead" and "file not found" in missing.last_error


async def test_nothing_is_sent_in_quiet_hours(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    await queue_people(sessionmaker, fake, 2)
    clock = Clock(dt.datetime(2026, 5, 20, 14, 0, tzinfo=dt.UTC))  # 22:00 local, the rows are due since noon
    sender = Sender(bot, sessionmaker, settings, clock=clock)
    assert await sender.drain_once() == 0
    clock.now = dt.datetime(2026, 5, 20, 23, 59, tzinfo=dt.UTC)  # 07:59 local
    assert await sender.drain_once() == 0
    clock.now = dt.datetime(2026, 5, 21, 0, 0, tzinfo=dt.UTC)  # 08:00 local
    assert await sender.drain_once() == 2
    assert len(delivered(fake)) == 2


async def test_run_sends_when_kicked_and_stops_cleanly(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, telegram: tuple[FakeTelegram, Bot]
) -> None:
    fake, bot = telegram
    fake.user(9001)
    sender = Sender(bot, sessionmaker, settings, clock=Clock(NOON), poll_seconds=60)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    async with sessionmaker() as s:
        await enqueue(s, key="k", kind="test", chat_id=9001, person_id=None, payload={"text": "hi"},
                      not_before=NOON)
        await s.commit()
    sender.kick()
    await fake.wait_for(lambda r: r.chat_id == 9001)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(fake.messages_to(9001)) == 1
