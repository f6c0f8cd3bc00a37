"""The service SIGKILLed in the middle of a report, then restarted: no report lost, none counted twice.

A contact's report is killed twice, in webhook mode (Telegram redelivers an update it got no answer
for): once before the report is saved (fetching its photo) — the redelivery is handled by the next
process and the contact gets the confirmation; once after it is saved but before the confirmation
is out — the redelivery is recognised and dropped, the contact who saw no confirmation sends again
and is told it is saved. Every confirmation the contact saw has its report in the database, and each
report is there once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from tests import factories
from tests.faults import (
    free_port,
    hold_scheduler_lease,
    reports_of,
    said_to,
    service_env,
    services,
    wait_until,
    webhook_settings,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CONTACT = 5001
WAIT = 60.0


async def test_a_report_killed_before_or_after_saving_is_kept_once(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    db = make_sessionmaker(engine)
    async with db() as s:
        qx = await factories.county(s, "祁县")
        await factories.project(s, qx, "JZ-017")
        await factories.project(s, qx, "JZ-018", name="祁县污水处理厂提标改造", progress=30)
        await factories.person(s, county_row=qx, telegram_id=CONTACT)
        await s.commit()
    await hold_scheduler_lease(db)  # no job of its own disturbs the conversation

    # Telegram keeps redelivering an unanswered update; so does the fake, long enough for a restart
    fake = FakeTelegram(webhook_retries=200, webhook_retry_delay=0.05)
    await fake.start()
    try:
        fake.user(CONTACT, "王", language_code="zh-hans")
        port = free_port()
        env = service_env(sqlite_url, tmp_path, fake, **webhook_settings(port, f"http://127.0.0.1:{port}/telegram"))

        def confirmed(code: str, since: int = 0) -> bool:
            return f"已保存 {code}" in said_to(fake, CONTACT, since)

        async with services() as start:
            first = await (await start("first", env, tmp_path / "run")).ready()

            # 1. killed before saving: the bot is fetching the report's photo
            fake.delay_next(1, seconds=WAIT, methods=["getFile"], execute=False)
            fake.send_photo(CONTACT, caption="JZ-017 80%")
            await wait_until(lambda: fake.counters["delayed"] >= 1, WAIT, "the bot to fetch the photo", log=first.log)
            await first.kill()
            assert await reports_of(db, "JZ-017") == [] and not confirmed("JZ-017")

            second = await (await start("second", env, tmp_path / "run")).ready()
            # the update was never answered, so it comes again, and this time it is saved and confirmed
            await wait_until(lambda: confirmed("JZ-017"), WAIT, "the redelivered report's confirmation",
                             log=second.log)

            # 2. killed after saving, before the confirmation reaches the contact
            since = len(fake.sent)
            fake.delay_next(1, seconds=WAIT, methods=["sendMessage"], execute=False)
            fake.send_text(CONTACT, "JZ-018 60%")

            async def saved_not_answered() -> bool:
                return fake.counters["delayed"] >= 2 and bool(await reports_of(db, "JZ-018"))

            await wait_until(saved_not_answered, WAIT, "the report saved, its answer on the way", log=second.log)
            await second.kill()
            assert not confirmed("JZ-018", since)

            third = await (await start("third", env, tmp_path / "run")).ready()
            await wait_until(lambda: fake.pending_updates == 0, WAIT, "the redelivery to be answered", log=third.log)
            assert not confirmed("JZ-018", since)  # it was applied already: dropped, not applied twice
            resent = len(fake.sent)
            fake.send_text(CONTACT, "JZ-018 60%")  # no confirmation came: the contact sends it again
            await wait_until(lambda: confirmed("JZ-018", resent), WAIT, "the answer to the resend", log=third.log)
    finally:
        await fake.stop()

    jz017, jz018 = await reports_of(db, "JZ-017"), await reports_of(db, "JZ-018")
    await engine.dispose()
    assert [r.progress for r in jz017] == [80] and [r.progress for r in jz018] == [60]
    assert [r for r in fake.rejected if r.description != "Gateway Timeout"] == []  # bar the injected hangs
