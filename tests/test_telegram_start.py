"""`qingshui run` when Telegram cannot be reached at start (blocked, or a wrong TELEGRAM_API_URL).

The service says so in one line in DEFAULT_LANGUAGE, keeps the outbox sender and the jobs working,
tries again with backoff, and once Telegram answers it says it is connected and starts answering.
A stop (SIGTERM) while it is still trying ends it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

import bot.telegram.start as telegram_start
from bot.demo.fake_telegram import BOT_ID, FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.lease import SCHEDULER_LEASE
from bot.store.models import Lease, Outbox
from bot.store.outbox import enqueue
from bot.telegram.app import run_service
from tests.conftest import make_settings
from tests.test_e2e_chat import Chat, text_of

pytestmark = pytest.mark.e2e

ADMIN = 9001
PATIENCE = 60.0  # an upper bound for each wait, not a timing expectation
UNREACHABLE = {"zh": "连不上 Telegram", "en": "Cannot reach Telegram"}
CONNECTED = {"zh": "已连接 Telegram", "en": "Connected to Telegram"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Callable[[], object], what: str) -> None:
    for _ in range(int(PATIENCE / 0.05)):
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def said(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


@pytest.fixture(autouse=True)
def _short_backoff(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # the same 1, 2, 4 … backoff, capped lower so the story does not wait a minute between tries
    monkeypatch.setattr(telegram_start, "FIRST_DELAY", 0.2)
    monkeypatch.setattr(telegram_start, "MAX_DELAY", 0.5)
    caplog.set_level(logging.INFO)


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_service_waits_for_telegram_keeps_working_and_then_answers(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, lang: str
) -> None:
    port = free_port()  # nothing listens here yet: Telegram is "blocked"
    settings = make_settings(db_url, tmp_path, telegram_api_url=f"http://127.0.0.1:{port}",
                             bot_token=f"{BOT_ID}:TEST", admin_ids=(ADMIN,), quiet_hours="", default_language=lang)
    engine = make_engine(db_url)
    db = make_sessionmaker(engine)
    async with db() as s:
        await enqueue(s, key="test:queued", kind="test", chat_id=ADMIN, person_id=None,
                      payload={"text": "queued before the start"})
        await s.commit()
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(settings, stop=stop))
    fake = FakeTelegram()
    try:
        await until(lambda: said(caplog, UNREACHABLE[lang]), "the line saying Telegram cannot be reached")
        assert len(said(caplog, UNREACHABLE[lang])) == 1  # said once, not at every try
        assert f"127.0.0.1:{port}" in said(caplog, UNREACHABLE[lang])[0]

        async def jobs_and_outbox_work() -> bool:
            async with db() as s:
                lease = await s.scalar(select(Lease).where(Lease.name == SCHEDULER_LEASE))
                queued = await s.scalar(select(Outbox).where(Outbox.key == "test:queued"))
            return lease is not None and queued is not None and queued.attempts >= 1

        await until(jobs_and_outbox_work, "the scheduler lease taken and the queued message tried")
        assert not said(caplog, CONNECTED[lang])

        fake.user(ADMIN, "管理员", language_code="zh-hans")
        await fake.start(port=port)  # Telegram comes back
        await until(lambda: fake.method_calls["getUpdates"], "polling to begin")
        assert len(said(caplog, CONNECTED[lang])) == 1
        assert fake.commands  # the command menu was set once Telegram answered
        answer = await Chat(fake, ADMIN).says("/start")
        assert "管理员" in text_of(answer)  # ADMIN_IDS: an administrator, told in their language (zh)
    finally:
        stop.set()
        await asyncio.wait_for(service, PATIENCE)
        with contextlib.suppress(Exception):
            await fake.stop()
        await engine.dispose()


async def test_a_stop_while_telegram_is_unreachable_ends_the_service(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(sqlite_url, tmp_path, telegram_api_url=f"http://127.0.0.1:{free_port()}",
                             bot_token=f"{BOT_ID}:TEST", quiet_hours="")
    stop = asyncio.Event()
    service = asyncio.create_task(run_service(settings, stop=stop))
    await until(lambda: said(caplog, UNREACHABLE["zh"]), "the line saying Telegram cannot be reached")
    stop.set()  # what SIGTERM does
    await asyncio.wait_for(service, PATIENCE)
    assert service.exception() is None
    assert not said(caplog, CONNECTED["zh"])
