"""/channels in chat: an administrator sees the channels with their keys masked and their last error;
anyone else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.channels.store import add_channel
from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Channel, County
from tests.test_e2e_chat import ADMIN, CONTACT, Chat, fake, invite_code, running, seed, text_of

pytestmark = pytest.mark.e2e
__all__ = ["fake"]  # the fake Bot API fixture of the chat stories


async def test_an_administrator_lists_the_channels_and_a_contact_is_refused(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    async with sessionmaker() as s:
        qixian = await s.scalar(select(County).where(County.name == "祁县"))
        await add_channel(s, name="祁县工作群", kind="wecom", county=qixian,
                          target="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-secret-5aaa")
        channel = await s.scalar(select(Channel))
        assert channel is not None
        channel.last_error = "93000 invalid webhook url <hint>"
        await s.commit()
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake):
        admin = Chat(fake, ADMIN)
        listed = text_of(await admin.says("/channels"))
        assert "祁县工作群" in listed and "企业微信群机器人" in listed and "祁县" in listed
        assert "key=…5aaa" in listed and "693a91f6-secret" not in listed
        assert "93000 invalid webhook url <hint>" in listed  # escaped on the way, shown as written
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {code}")
        refused = text_of(await contact.says("/channels"))
        assert "祁县工作群" not in refused
    assert fake.rejected == []
