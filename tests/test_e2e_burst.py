"""The monthly crowd: right after a reminder wave, thirty contacts each send five quick messages within a
moment (a one-message report, /list, their project's card twice, /help), against a fake Bot API that
holds the bot to Telegram's limits (30 messages a second overall, one a second per chat, 429 past them).

Every contact gets every answer, in the order they asked, and nothing fails: no handler error, no
"please resend", no answer refused by the fake; every report is saved once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.demo.fake_telegram import FakeTelegram, SentRecord
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Project, Report
from tests import factories
from tests.test_e2e_chat import Chat, running

pytestmark = pytest.mark.e2e

CONTACTS = 30
COUNTIES = ("祁县", "平遥县", "介休市")
FIRST_CONTACT = 20_000
MESSAGES = 5


def code_of(n: int) -> str:
    return f"BX-{n:03d}"


async def seed(db_url: str) -> None:
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as s:
        counties = [await factories.county(s, name, order) for order, name in enumerate(COUNTIES, 1)]
        for n in range(CONTACTS):
            county = counties[n % len(counties)]
            await factories.project(s, county, code_of(n), name=f"{county.name}第{n}号工程", progress=30)
            await factories.person(s, "contact", county, telegram_id=FIRST_CONTACT + n, name=f"联络员{n}")
        await s.commit()
    await engine.dispose()


async def test_thirty_contacts_sending_five_quick_messages_each_get_every_answer(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(db_url)
    caplog.set_level(logging.WARNING)
    async with FakeTelegram() as fake:
        fake.set_rate_limits(per_chat_per_second=1, global_per_second=30)
        users = [FIRST_CONTACT + n for n in range(CONTACTS)]
        for n, user in enumerate(users):
            fake.user(user, f"联络员{n}", language_code="zh-hans")
        # Telegram's own limits, as the service runs by default (not the relaxed ones of test_e2e_chat)
        async with running(db_url, tmp_path, fake, send_rate_per_chat=1.0) as (_app, sessionmaker):
            start = len(fake.sent)
            for step in range(MESSAGES):  # everyone's first message, then everyone's second, ... at once
                for n, user in enumerate(users):
                    code = code_of(n)
                    text = (f"{code} 60% 管网铺设过半", "/list", f"/project {code}", f"/project {code}", "/help")[step]
                    fake.send_text(user, text)

            def answers(user: int) -> list[str]:
                return [r.text or "" for r in fake.sent[start:] if r.chat_id == user and r.is_message]

            for _ in range(600):  # each chat's floor is 4 s, 150 answers at 25/s take 6 s
                if all(len(answers(u)) >= MESSAGES for u in users):
                    break
                await asyncio.sleep(0.1)
            await fake.wait_idle(quiet=1.5, timeout=30)

            for n, user in enumerate(users):
                got = answers(user)
                code = code_of(n)
                assert len(got) == MESSAGES, f"contact {n} got {len(got)} answers: {got}"
                saved, county_list, card, card_again, help_text = got
                assert f"已保存 {code} 的进度报告" in saved
                assert "一县一清单" in county_list and code in county_list
                assert card.startswith(f"📁 {code}") and card_again.startswith(f"📁 {code}")
                assert "60%" in card
                assert "使用说明" in help_text
            assert fake.rejected == []

        async with sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(Report)) == CONTACTS
            progress = await s.scalars(select(Project.progress))
            assert set(progress) == {60}
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []


async def test_answers_waiting_on_telegram_hold_no_database_connection(sqlite_url: str, tmp_path: Path) -> None:
    """Twenty contacts ask for their list while Telegram is slow to take the answers, and one of them
    sends two more messages meanwhile: whoever waits (for Telegram, or for their own earlier message)
    holds no connection, so the pool is free for everyone else."""
    await seed(sqlite_url)
    async with FakeTelegram() as fake:
        users = [FIRST_CONTACT + n for n in range(20)]
        for n, user in enumerate(users):
            fake.user(user, f"联络员{n}", language_code="zh-hans")
        fake.delay_next(len(users), seconds=3.0, methods=["sendMessage"])
        async with running(sqlite_url, tmp_path, fake) as (app, _sessionmaker):
            engine = app.sessionmaker.kw["bind"]
            start = len(fake.sent)
            for user in users:
                fake.send_text(user, "/list")
            fake.send_text(users[0], f"/project {code_of(0)}")
            fake.send_text(users[0], "/help")
            for _ in range(100):
                if fake.counters["delayed"] == len(users):
                    break
                await asyncio.sleep(0.05)
            assert fake.counters["delayed"] == len(users)  # every first answer is now waiting at Telegram
            assert engine.pool.checkedout() == 0
            await fake.wait_for(lambda r: r.chat_id == users[0] and "使用说明" in (r.text or ""), since=start,
                                timeout=15)
            mine = [r.text or "" for r in fake.sent[start:] if r.chat_id == users[0] and r.is_message]
            assert len(mine) == 3  # in the order asked: the list, the card, the help
            assert mine[0].startswith("📋") and mine[1].startswith(f"📁 {code_of(0)}") and "使用说明" in mine[2]


async def test_an_answer_refused_with_429_is_sent_again_after_retry_after(sqlite_url: str, tmp_path: Path) -> None:
    await seed(sqlite_url)
    user = FIRST_CONTACT
    async with FakeTelegram() as fake:
        fake.user(user, "联络员0", language_code="zh-hans")
        async with running(sqlite_url, tmp_path, fake):
            start = len(fake.sent)
            fake.fail_next(2, status=429, retry_after=1, methods=["sendMessage"])
            fake.send_text(user, f"/project {code_of(0)}")
            card = await fake.wait_for(lambda r: r.chat_id == user and r.is_message, since=start, timeout=10)
            assert (card.text or "").startswith(f"📁 {code_of(0)}")
            await fake.wait_idle(quiet=0.5)
            assert [r for r in fake.sent[start:] if r.chat_id == user and r.is_message] == [card]
            assert fake.counters["injected_429"] == 2


async def test_fifteen_guided_reports_at_once_all_reach_the_ledger(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fifteen contacts walk through the guided report in step with each other (every step's answers
    and taps arrive together): every dialog keeps its own state and every report is saved."""
    await seed(db_url)
    caplog.set_level(logging.WARNING)
    async with FakeTelegram() as fake:
        fake.set_rate_limits(per_chat_per_second=1, global_per_second=30)
        chats = [Chat(fake, FIRST_CONTACT + n) for n in range(15)]
        for n, chat in enumerate(chats):
            fake.user(chat.user_id, f"联络员{n}", language_code="zh-hans")
        async with running(db_url, tmp_path, fake, send_rate_per_chat=1.0) as (_app, sessionmaker):

            async def everyone(step: Callable[[int, Chat], Awaitable[list[SentRecord]]]) -> list[SentRecord]:
                answers = await asyncio.gather(*(step(n, chat) for n, chat in enumerate(chats)))
                return [got[-1] for got in answers]

            asked = await everyone(lambda n, chat: chat.says("📝 更新进度"))
            asked = await everyone(lambda n, chat: chat.taps(asked[n], code_of(n)))
            asked = await everyone(lambda n, chat: chat.taps(asked[n], "已开工"))
            await everyone(lambda n, chat: chat.says(f"{70 + n}%"))
            await everyone(lambda n, chat: chat.says(f"{100 + n}"))
            asked = await everyone(lambda n, chat: chat.says(f"问题{n}"))
            asked = await everyone(lambda n, chat: chat.taps(asked[n], "跳过"))  # next steps
            asked = await everyone(lambda n, chat: chat.taps(asked[n], "跳过"))  # photos
            saved = await everyone(lambda n, chat: chat.taps(asked[n], "确认保存"))
            for n, card in enumerate(saved):
                assert f"已保存 {code_of(n)}" in (card.text or "") and f"形象进度 {70 + n}%" in (card.text or "")
            assert fake.rejected == []

        async with sessionmaker() as s:
            rows = (await s.execute(select(Project.code, Project.progress, Project.investment_done))).all()
            by_code = {code: (progress, float(done or 0)) for code, progress, done in rows}
            for n in range(15):
                assert by_code[code_of(n)] == (70 + n, 100.0 + n)
            problems = set(await s.scalars(select(Report.problems)))
            assert problems == {f"问题{n}" for n in range(15)}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
