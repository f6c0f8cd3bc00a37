"""The guided report when the answers are not what it asked for, end to end against the fake Bot API:
numbers typed the way people type them (full-width, with % or 万元, thousands commas) are taken, anything
else is asked again without losing the dialog; a typed word where a button is needed, a button of a
dialog that is over and a dialog whose project has gone each get a plain answer."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from bot.demo.fake_telegram import FakeTelegram, SentRecord
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Project
from tests.test_e2e_chat import CONTACT, Chat, fake, invite_code, project_row, running, seed, text_of

__all__ = ["fake"]  # the fake Bot API fixture, shared with the chat stories


def has_buttons(said: list[SentRecord]) -> bool:
    return bool((said[-1].reply_markup or {}).get("inline_keyboard"))


async def test_typed_numbers_are_read_as_people_write_them_and_others_asked_again(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    invite = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {invite}")
        step = await contact.says("/report JZ-017")

        # the status step wants a button: a typed word is told so, and the dialog goes on
        said = await contact.says("已开工")
        assert "这一步请点按钮选择" in text_of(said) and has_buttons(said)
        step = await contact.taps(step[-1], "已开工")

        # progress: words and fractions are asked again, with the buttons; full-width with ％ is taken
        for typed in ("八十五", "85.5", "120", "-5"):
            said = await contact.says(typed)
            assert f"「{typed}」不是 0–100 的整数" in text_of(said) and has_buttons(said)
        step = await contact.says("８５％")
        assert "本次完成了哪些节点" in text_of(step)
        step = await contact.taps(step[-1], "完成选择")

        # investment in 万元: words and negative amounts are asked again; a comma and the unit are fine
        for typed in ("很多", "-3"):
            said = await contact.says(typed)
            assert f"「{typed}」不是金额" in text_of(said) and has_buttons(said)
        step = await contact.says("1,200.5万元")
        assert "存在问题" in text_of(step)
        for _ in range(3):  # problems, next steps, photos
            step = await contact.taps(step[-1], "跳过")
        saved = await contact.taps(step[-1], "确认保存")
        assert "已保存 JZ-017" in text_of(saved)
        project = await project_row(db, "JZ-017")
        assert (project.progress, project.investment_done) == (85, 1200.5)

        # a button of the finished dialog is stale, and says so
        assert "这个按钮已经过期了" in text_of(await contact.taps(step[-1], "确认保存"))

        # the project of an open dialog disappears (a new ledger names it otherwise): the dialog ends
        step = await contact.says("/report JZ-018")
        step = await contact.taps(step[-1], "已开工")
        async with db() as s:
            await s.execute(update(Project).where(Project.code == "JZ-018").values(code="JZ-099"))
            await s.commit()
        assert "这个按钮已经过期了" in text_of(await contact.says("45"))
        assert "现在没有正在填写的报告" in text_of(await contact.says("/cancel"))
        assert (await project_row(db, "JZ-099")).progress == 30
    assert fake.rejected == []
