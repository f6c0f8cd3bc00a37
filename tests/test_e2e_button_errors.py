"""A button whose handling fails, end to end against the fake Bot API: the press is answered exactly once
(Telegram refuses a second answer) and the person gets the polite error message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import OperationalError

import handlers.identity
import handlers.project
from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Project
from tests.test_e2e_chat import CONTACT, Chat, fake, invite_code, running, seed, text_of

__all__ = ["fake"]  # the fake Bot API fixture, shared with the chat stories


def answers(fake: FakeTelegram, since: int) -> list[str]:
    return [r.method for r in fake.sent[since:] if r.method == "answerCallbackQuery"]


async def test_a_failing_button_is_answered_once_and_the_person_told(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    invite = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, _db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {invite}")
        listed = await contact.says("/list")

        async def broken_card(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("the card could not be drawn")

        # the handler fails after aiogram answered the press
        monkeypatch.setattr(handlers.project, "send_card", broken_card)
        mark = len(fake.sent)
        said = await contact.taps(listed[-1], "JZ-017")
        assert "抱歉，处理这条消息时出了问题" in text_of(said).replace(",", "，")
        assert answers(fake, mark) == ["answerCallbackQuery"]
        monkeypatch.undo()

        # the press fails before it was answered (the database is gone): the error handler answers it
        async def no_database(*_args: object, **_kwargs: object) -> None:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

        monkeypatch.setattr(handlers.identity, "writer_of_update", no_database)
        monkeypatch.setattr(handlers.identity, "person_by_telegram_id", no_database)
        mark = len(fake.sent)
        said = await contact.taps(listed[-1], "JZ-018")
        assert "数据库连接不上" in text_of(said)
        assert answers(fake, mark) == ["answerCallbackQuery"]
    assert fake.rejected == []  # no answer Telegram would have refused


async def test_a_button_of_a_project_removed_since_says_the_button_is_stale(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    """A list shown before the office removed a project: its button carries the project's id, not a code the
    person typed, so the answer is that the button is out of date (not "no project 「」, check the code")."""
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    invite = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, _db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {invite}")
        listed = await contact.says("/list")
        async with sessionmaker() as s:
            await s.execute(delete(Project).where(Project.code == "JZ-017"))
            await s.commit()
        said = text_of(await contact.taps(listed[-1], "JZ-017"))
        assert "这个按钮已经过期了" in said and "「」" not in said
    assert fake.rejected == []
