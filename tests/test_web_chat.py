"""/web in the chat, through the real bot and the fake Telegram: a leader gets their personal link (and with an
https WEB_BASE_URL a Mini App button), the link opens the cockpit, `/web revoke` voids it; strangers get nothing."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.demo.fake_telegram import FakeTelegram
from bot.web.app import make_app
from tests import factories
from tests.test_e2e_chat import LEADER, NOW, STRANGER, Chat, fake, running, seed, text_of

__all__ = ["fake"]  # the fixture, shared with the chat's end-to-end tests
LINK = re.compile(r"(https?://\S+/\?k=[\w.-]+)")


async def opens(app_settings: object, sessionmaker: async_sessionmaker[AsyncSession], url: str) -> int:
    server = TestServer(make_app(app_settings, sessionmaker, clock=lambda: NOW))  # type: ignore[arg-type]
    async with TestClient(server, cookie_jar=CookieJar(unsafe=True)) as client:
        return (await client.get("/" + url.split("/", 3)[3])).status


async def test_a_leader_asks_for_the_cockpit_and_can_revoke_it(db_url: str, tmp_path: Path,
                                                               fake: FakeTelegram) -> None:
    async with running(db_url, tmp_path, fake, web_base_url="http://cockpit.example.org:8080") as (app, sm):
        await seed(sm)
        async with sm() as s:
            await factories.person(s, "leader", None, telegram_id=LEADER, name="李市长")
            await s.commit()
        leader = Chat(fake, LEADER)
        said = text_of(await leader.says("/web"))
        assert "清水驾驶舱" in said and "12 小时内有效" in said
        first = LINK.search(said)
        assert first and first[1].startswith("http://cockpit.example.org:8080/?k=")
        assert await opens(app.settings, sm, first[1]) == 200

        again = LINK.search(text_of(await leader.says("🖥 驾驶舱")))  # the keyboard's button
        assert again and await opens(app.settings, sm, again[1]) == 200

        assert "已收回" in text_of(await leader.says("/web revoke"))
        assert await opens(app.settings, sm, first[1]) == 403 and await opens(app.settings, sm, again[1]) == 403

        stranger = text_of(await Chat(fake, STRANGER).says("/web"))
        assert LINK.search(stranger) is None


async def test_over_https_the_link_comes_with_a_mini_app_button(db_url: str, tmp_path: Path,
                                                                fake: FakeTelegram) -> None:
    async with running(db_url, tmp_path, fake, web_base_url="https://cockpit.example.org") as (_, sm):
        await seed(sm)
        async with sm() as s:
            await factories.person(s, "leader", None, telegram_id=LEADER, name="李市长")
            await s.commit()
        answer = (await Chat(fake, LEADER).says("/web"))[-1]
        buttons = [b for row in (answer.reply_markup or {}).get("inline_keyboard", []) for b in row]
        assert buttons and buttons[0]["web_app"]["url"] == "https://cockpit.example.org/app"
