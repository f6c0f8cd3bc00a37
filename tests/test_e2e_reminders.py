"""End to end: a monthly reminder arrives through the real sender, the contact taps its button and
reports through the real bot, and the follow-up no longer goes to them."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.demo.fake_telegram import FakeTelegram, SentRecord
from bot.services.people import find_county
from bot.store.db import make_engine, make_sessionmaker
from bot.telegram.sender import Sender
from jobs.base import JobContext
from jobs.registry import run_job
from tests import factories
from tests.conftest import make_settings
from tests.test_e2e_chat import CONTACT, OTHER_CONTACT, Chat, running, seed, text_of

pytestmark = pytest.mark.e2e
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.user(CONTACT, "王", language_code="zh-hans")
        server.user(OTHER_CONTACT, "赵", language_code="zh-hans")
        yield server


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH).astimezone(dt.UTC)


async def test_reminder_button_report_and_no_follow_up(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    engine = make_engine(sqlite_url)
    await seed(make_sessionmaker(engine))
    async with make_sessionmaker(engine)() as s:
        await factories.person(s, "contact", await find_county(s, "祁县"), telegram_id=CONTACT, name="王联络")
        await factories.person(s, "contact", await find_county(s, "平遥县"), telegram_id=OTHER_CONTACT, name="赵联络")
        await s.commit()
    await engine.dispose()
    settings = make_settings(sqlite_url, tmp_path, send_rate_per_chat=20, send_rate_global=100)
    ctx = JobContext.from_settings(settings)

    async with running(sqlite_url, tmp_path, fake) as (app, db):

        async def wave(at: dt.datetime) -> list[SentRecord]:
            async with db() as s:
                await run_job(s, "reminders", at, ctx)
            start = len(fake.sent)
            await Sender(app.bot, db, settings, clock=lambda: at).drain_once()
            return [r for r in fake.sent[start:] if r.method == "sendMessage"]

        # Friday 20 November 2026, the reminder day: one message each, listing their own county's projects
        sent = await wave(local(2026, 11, 20, 9, 30))
        [mine] = [r for r in sent if r.chat_id == CONTACT]
        [theirs] = [r for r in sent if r.chat_id == OTHER_CONTACT]
        assert "JZ-017" in text_of([mine]) and "JZ-018" in text_of([mine]) and "JZ-020" not in text_of([mine])
        assert "JZ-020" in text_of([theirs]) and "JZ-017" not in text_of([theirs])

        # the contact taps JZ-017's button on the reminder and goes through the guided report
        contact = Chat(fake, CONTACT)
        step = await contact.taps(mine, "JZ-017")
        step = await contact.taps(step[-1], "已开工")
        step = await contact.says("70")
        step = await contact.taps(step[-1], "完成选择")
        for _ in range(3):  # investment, problems, next steps: skipped
            step = await contact.taps(step[-1], "跳过")
        summary = await contact.taps(step[-1], "跳过")  # no photo this time
        saved = await contact.taps(summary[-1], "确认保存")
        assert "已保存 JZ-017" in text_of(saved)
        # and answers for JZ-018 with one message
        assert "已保存 JZ-018" in text_of(await contact.says("JZ-018 40% 设备安装中"))

        # Tuesday 24 November, two working days on: the follow-up goes only to the one still missing
        follow_ups = await wave(local(2026, 11, 24, 9, 30))
        assert [r.chat_id for r in follow_ups] == [OTHER_CONTACT]
        assert "JZ-020" in text_of(follow_ups)
    assert fake.rejected == []
