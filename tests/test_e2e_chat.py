"""The whole bot in long polling against the fake Bot API on 127.0.0.1, through TELEGRAM_API_URL.

Stories a county contact, a leader and an administrator live through: invite, /start, the county
list, a guided report with a photo, a one-message report, a reply to a project message, undo and
the dossier; an unbound user and a contact reaching for another county are refused; hostile strings
come back escaped and every message the bot sends is one Telegram would accept."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram import BOT_ID, FakeTelegram, SentRecord
from bot.services.people import create_invite, find_county
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Milestone, Person, Photo, Project, Report
from bot.telegram.app import App, build_app
from bot.telegram.callbacks import ProjectAction
from tests import factories
from tests.conftest import REDIS_URL, make_settings, need_redis

pytestmark = pytest.mark.e2e

ADMIN, CONTACT, LEADER, STRANGER, OTHER_CONTACT = 9001, 5001, 7001, 6666, 5002
WAIT = 5.0
NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)  # 10:00 in Jinzhong
SHOWN = ("sendMessage", "sendPhoto", "sendDocument", "editMessageText")


async def seed(sessionmaker: async_sessionmaker[AsyncSession], project_name: str | None = None) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s, "祁县", 1)
        py = await factories.county(s, "平遥县", 2)
        await factories.project(s, qx, "JZ-017", name=project_name or "祁县城区雨污分流改造工程", milestones=(
            ("管网铺设", dt.date(2026, 10, 1), None), ("泵站建设", dt.date(2026, 12, 1), None)))
        await factories.project(s, qx, "JZ-018", name="祁县污水处理厂提标改造", progress=30)
        await factories.project(s, py, "JZ-020", name="平遥县入河排污口整治")
        await s.commit()


class Chat:
    """One Telegram user talking to the bot through the fake; each action returns what the bot said."""

    def __init__(self, fake: FakeTelegram, user_id: int) -> None:
        self.fake, self.user_id = fake, user_id

    async def _after(self, act: Callable[[], Any]) -> list[SentRecord]:
        start = len(self.fake.sent)
        act()
        await self.fake.wait_for(lambda r: r.chat_id == self.user_id and r.method in SHOWN, since=start, timeout=WAIT)
        await self.fake.wait_idle(quiet=0.1, timeout=WAIT)
        return [r for r in self.fake.sent[start:] if r.chat_id == self.user_id and r.method in SHOWN]

    async def says(self, text: str, reply_to: SentRecord | None = None) -> list[SentRecord]:
        return await self._after(lambda: self.fake.send_text(
            self.user_id, text, reply_to_message_id=reply_to.message_id if reply_to else None))

    async def sends_photo(self, caption: str | None = None, reply_to: SentRecord | None = None) -> list[SentRecord]:
        return await self._after(lambda: self.fake.send_photo(
            self.user_id, caption=caption, reply_to_message_id=reply_to.message_id if reply_to else None))

    async def taps(self, message: SentRecord, label: str) -> list[SentRecord]:
        """Press the button of `message` whose label contains `label`."""
        rows = (self.fake.message(self.user_id, message.message_id or 0) or {}).get("reply_markup") or {}
        buttons = [b for row in rows.get("inline_keyboard", []) for b in row]
        matching = [b["callback_data"] for b in buttons if label in b["text"]]
        assert matching, f"no button {label!r} in {[b['text'] for b in buttons]}"
        return await self._after(lambda: self.fake.press(self.user_id, message, matching[0]))

    async def presses(self, message: SentRecord, data: str) -> list[SentRecord]:
        """Press a button by its callback data, even one the message does not show (a forged press)."""
        return await self._after(lambda: self.fake.press(self.user_id, message, data, check=False))


@asynccontextmanager
async def running(
    db_url: str, tmp_path: Path, fake: FakeTelegram, **overrides: object
) -> AsyncIterator[tuple[App, async_sessionmaker[AsyncSession]]]:
    """The real application (bot, dispatcher, middlewares, routers) polling the fake."""
    # The fake here enforces no rate limit and `Chat` reads "quiet for 0.1 s" as "done", so answers are not
    # held to one a second per chat: tests/test_e2e_burst.py runs the bot against Telegram's limits.
    values: dict[str, object] = {"telegram_api_url": fake.base_url, "bot_token": f"{BOT_ID}:TEST",
                                 "admin_ids": (ADMIN,), "throttle_per_minute": 1000, "send_rate_per_chat": 1000.0}
    values.update(overrides)
    settings = make_settings(db_url, tmp_path, **values)
    engine = make_engine(db_url)
    sessionmaker = make_sessionmaker(engine)
    app = build_app(settings, sessionmaker, clock=lambda: NOW)
    stop = asyncio.Event()
    serving = asyncio.create_task(app.serve(stop))
    try:
        yield app, sessionmaker
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)
        await app.close()
        await engine.dispose()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        for user_id, name in ((ADMIN, "管理员"), (CONTACT, "王"), (LEADER, "李"), (STRANGER, "?"),
                              (OTHER_CONTACT, "赵")):
            server.user(user_id, name, language_code="zh-hans")
        yield server


async def invite_code(sessionmaker: async_sessionmaker[AsyncSession], role: str, county: str | None,
                      name: str = "") -> str:
    async with sessionmaker() as s:
        row = await find_county(s, county) if county else None
        code, _ = await create_invite(s, role=role, county=row, name=name, ttl=dt.timedelta(days=7), now=NOW)
    return code


async def project_row(sessionmaker: async_sessionmaker[AsyncSession], code: str) -> Project:
    async with sessionmaker() as s:
        project = await s.scalar(select(Project).where(Project.code == code))
        assert project is not None
        return project


async def project_button(sessionmaker: async_sessionmaker[AsyncSession], action: str, code: str) -> str:
    """The callback data of a button `action` about the project `code` (buttons carry the project's id)."""
    return ProjectAction(action=action, project_id=(await project_row(sessionmaker, code)).id).pack()


def text_of(records: list[SentRecord]) -> str:
    return "\n".join(r.text or "" for r in records)


async def test_contact_story_from_invite_to_dossier(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    await seed(make_sessionmaker(make_engine(sqlite_url)))
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        admin, contact = Chat(fake, ADMIN), Chat(fake, CONTACT)

        # the administrator invites a contact for 祁县 with the buttons
        asked = await admin.says("/invite")
        asked = await admin.taps(asked[-1], "县区联络员")
        created = await admin.taps(asked[-1], "祁县")
        invite = created[-1].text or ""
        assert "https://t.me/qingshui_test_bot?start=" in invite
        code = invite.split("?start=")[1].split()[0]

        # the contact opens the link: bound, greeted, with the main menu
        bound = await contact.says(f"/start {code}")
        assert "绑定成功" in text_of(bound) and "县区联络员" in text_of(bound) and "祁县" in text_of(bound)
        assert "keyboard" in (bound[-1].reply_markup or {})

        # one county one list: both 祁县 projects, none reported yet, nothing of 平遥县
        listed = await contact.says("/list")
        assert "JZ-017" in text_of(listed) and "JZ-018" in text_of(listed) and "JZ-020" not in text_of(listed)
        assert "本月已报 0 个" in text_of(listed)

        # the guided report, with a full-width typed progress, a milestone, investment, problems and a photo
        step = await contact.says("📝 更新进度")
        step = await contact.taps(step[-1], "JZ-017")
        step = await contact.taps(step[-1], "已开工")
        step = await contact.says("８５％")
        assert "节点" in text_of(step)
        step = await contact.taps(step[-1], "管网铺设")  # toggles, the same message shows it chosen
        assert any("✅ 管网铺设" in b["text"] for row in step[-1].reply_markup["inline_keyboard"] for b in row)
        step = await contact.taps(step[-1], "完成选择")
        step = await contact.says("860.5")
        step = await contact.says("征地拆迁滞后")
        step = await contact.taps(step[-1], "跳过")
        step = await contact.sends_photo()
        assert "第 1 张" in text_of(step)
        summary = await contact.taps(step[-1], "照片已齐")
        assert "50% → <b>85%</b>" in (summary[-1].html or "") and "「管网铺设」" in text_of(summary)
        saved = await contact.taps(summary[-1], "确认保存")
        card = saved[-1]
        assert "已保存 JZ-017" in (card.text or "") and "形象进度 85%" in (card.text or "")

        project = await project_row(db, "JZ-017")
        assert (project.progress, project.investment_done) == (85, 860.5)
        async with db() as s:
            assert await s.scalar(select(Milestone.done).where(Milestone.name == "管网铺设")) == dt.date(2026, 11, 20)
            photo = await s.scalar(select(Photo))
            assert photo is not None and photo.file_id and photo.path.startswith("photos/JZ-017/")
            assert (tmp_path / photo.path).stat().st_size > 0  # the copy under DATA_DIR

        # a one-message report on another project: saved at once
        quick = await contact.says("JZ-018 60% 主体完工")
        assert "已保存 JZ-018" in text_of(quick)
        assert (await project_row(db, "JZ-018")).progress == 60

        # a reply to that project's card needs no code
        replied = await contact.says("90%", reply_to=quick[-1])
        assert "已保存 JZ-018" in text_of(replied)
        assert (await project_row(db, "JZ-018")).progress == 90

        # undo takes back the last report, and the ledger with it
        undone = await contact.says("/undo")
        assert "已撤销 JZ-018" in text_of(undone)
        assert (await project_row(db, "JZ-018")).progress == 60

        # the dossier: the timeline in chat, and the full file
        timeline = await contact.taps(card, "档案记录")
        assert "形象进度：50% → 85%" in text_of(timeline) and "📷 照片 1 张" in text_of(timeline)
        document = await contact.taps(card, "完整档案文件")
        assert document[-1].method == "sendDocument" and (document[-1].file_name or "").endswith(".html")
        html = (document[-1].file_bytes or b"").decode("utf-8")
        assert "征地拆迁滞后" in html and photo.path in html

        # the list now shows this month's updates
        assert "本月已报 2 个" in text_of(await contact.says("/list"))
    assert fake.rejected == []


async def test_an_unbound_user_sees_no_project_data(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    await seed(make_sessionmaker(make_engine(sqlite_url)))
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        stranger = Chat(fake, STRANGER)
        said = [*await stranger.says("/start"), *await stranger.says("/list"), *await stranger.says("JZ-017 80%"),
                *await stranger.says("/project JZ-017"), *await stranger.says("/start not-a-code")]
        card = (await Chat(fake, STRANGER).says("/help"))[-1]
        said += await stranger.presses(card, await project_button(db, "card", "JZ-017"))
        said += await stranger.presses(card, "p:card:JZ-017:0")  # a button sent before buttons carried ids
        for record in said:
            assert "JZ-017" not in (record.text or "") and "雨污分流" not in (record.text or "")
        assert "还没有绑定" in text_of(said) and "没有找到这个邀请码" in text_of(said)
        async with db() as s:
            assert await s.scalar(select(func.count()).select_from(Report)) == 0
            assert await s.scalar(select(func.count()).select_from(Person)) == 0
    assert fake.rejected == []


async def test_a_contact_cannot_see_or_report_another_countys_project(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        bound = await contact.says(f"/start {code}")
        refused = [*await contact.says("JZ-020 50%"), *await contact.says("/project JZ-020"),
                   *await contact.presses(bound[-1], await project_button(db, "card", "JZ-020")),
                   *await contact.presses(bound[-1], await project_button(db, "report", "JZ-020")),
                   *await contact.presses(bound[-1], "c:list:2:")]
        assert all("平遥县入河排污口整治" not in (r.text or "") for r in refused)
        assert text_of(refused).count("不属于您负责的县区") == 4
        assert "无权查看" in (refused[-1].text or "")
        assert (await project_row(db, "JZ-020")).progress == 50
        # a county leader may look at their county but not report
        leader_code = await invite_code(db, "county_leader", "祁县")
        leader = Chat(fake, OTHER_CONTACT)
        await leader.says(f"/start {leader_code}")
        assert "JZ-017" in text_of(await leader.says("/project JZ-017"))
        assert "不能提交进度报告" in text_of(await leader.says("JZ-017 90%"))
        assert (await project_row(db, "JZ-017")).progress == 50
    assert fake.rejected == []


async def test_a_city_leader_chooses_the_county_and_pages_through_it(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    async with sessionmaker() as s:
        qx = await find_county(s, "祁县")
        assert qx is not None
        for n in range(30, 45):
            await factories.project(s, qx, f"JZ-{n:03d}", name=f"项目{n}")
        await s.commit()
    code = await invite_code(sessionmaker, "leader", None)
    async with running(sqlite_url, tmp_path, fake) as (_app, _db):
        leader = Chat(fake, LEADER)
        await leader.says(f"/start {code}")
        choose = await leader.says("/list")
        page = await leader.taps(choose[-1], "祁县")
        assert "共 17 个项目" in text_of(page) and "第 1/2 页" in text_of(page)
        turned = await leader.taps(page[-1], "下一页")
        assert turned[-1].method == "editMessageText" and "第 2/2 页" in (turned[-1].text or "")
        assert "JZ-044" in (turned[-1].text or "")
        card = await leader.says("/project jz020")  # codes are forgiving
        assert "平遥县入河排污口整治" in text_of(card)
        assert "不能提交进度报告" in text_of(await leader.says("/report"))
    assert fake.rejected == []


async def test_confirmations_corrections_and_no_change(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {code}")

        # no code and not a reply: which project? (buttons); "no change" counts as the month's update once
        asked = await contact.says("本月无变化")
        assert "哪个项目" in text_of(asked)
        saved = await contact.taps(asked[-1], "JZ-017")
        assert "本月（2026-11）无变化" in text_of(saved)
        again = await contact.taps(saved[-1], "本月无变化")
        assert "已经报过了" in text_of(again)

        # a milestone named with a completion word is confirmed first
        asked = await contact.says("JZ-017 泵站建设完成")
        assert "节点「泵站建设」完成" in text_of(asked) and "确认保存吗" in text_of(asked)
        async with db() as s:
            assert await s.scalar(select(func.count()).select_from(Report)) == 1
        await contact.taps(asked[-1], "确认保存")
        again = await contact.taps(asked[-1], "确认保存")  # pressed twice: saved once
        assert "已经处理过" in text_of(again)
        async with db() as s:
            assert await s.scalar(select(Milestone.done).where(Milestone.name == "泵站建设")) is not None
            assert await s.scalar(select(func.count()).select_from(Report)) == 2

        # backwards needs a confirmation; cancelling saves nothing
        asked = await contact.says("JZ-017 ４０％")
        assert "降低" in text_of(asked)
        await contact.taps(asked[-1], "取消")
        assert (await project_row(db, "JZ-017")).progress == 50

        # ambiguous: a bare number and a bare 完成 are never guessed, a button offers the reading
        asked = await contact.says("JZ-018 80")
        assert "还没有保存" in text_of(asked) and "80%" in text_of(asked)
        await contact.taps(asked[-1], "按形象进度 80% 保存")
        assert (await project_row(db, "JZ-018")).progress == 80
        asked = await contact.says("JZ-018 完成")
        assert "还没有保存" in text_of(asked)
        assert (await project_row(db, "JZ-018")).status == "started"

        # a reply to a message naming several projects (the list) asks which one, among those
        listed = await contact.says("/list")
        asked = await contact.says("85%", reply_to=listed[-1])
        choices = [b["text"] for row in asked[-1].reply_markup["inline_keyboard"] for b in row]
        assert choices == ["JZ-017", "JZ-018"]
        saved = await contact.taps(asked[-1], "JZ-018")
        assert "已保存 JZ-018" in text_of(saved)
        assert (await project_row(db, "JZ-018")).progress == 85

        # a photo with a caption is a report with its photo; a photo alone asks first
        saved = await contact.sends_photo("JZ-018 完工 竣工验收", reply_to=None)
        assert "已保存 JZ-018" in text_of(saved)
        asked = await contact.sends_photo(reply_to=saved[-1])
        assert "只有照片" in text_of(asked)
        await contact.taps(asked[-1], "确认保存")
        async with db() as s:
            assert await s.scalar(select(func.count()).select_from(Photo)) == 2
        assert (await project_row(db, "JZ-018")).status == "completed"

        # what the bot cannot use gets a clear answer
        assert "以「照片」方式发送" in text_of(await contact._after(
            lambda: fake.send_document(CONTACT, "ledger.xlsx", b"PK\x03\x04")))
        assert "没有 /nonsense 这个命令" in text_of(await contact.says("/nonsense"))
        assert "没看懂" in text_of(await contact.says("你好"))
    assert fake.rejected == []


async def test_a_repeated_update_is_applied_once(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {code}")
        start = len(fake.sent)
        update = fake.send_text(CONTACT, "JZ-017 80%")
        await fake.wait_for(lambda r: r.chat_id == CONTACT and r.is_message, since=start, timeout=WAIT)
        await fake.wait_idle(quiet=0.1)
        fake.deliver_again(update)
        await fake.wait_idle(quiet=0.3)
        assert len([r for r in fake.sent[start:] if r.chat_id == CONTACT and r.is_message]) == 1
        async with db() as s:
            assert await s.scalar(select(func.count()).select_from(Report)) == 1


@pytest.mark.parametrize("storage", ["database", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_half_finished_dialog_survives_a_restart(
    storage: str, sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    redis: dict[str, object] = {}
    if storage == "redis":
        need_redis()
        client = Redis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
        redis = {"redis_url": REDIS_URL}
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    contact = Chat(fake, CONTACT)
    async with running(sqlite_url, tmp_path, fake, **redis):
        await contact.says(f"/start {code}")
        step = await contact.says("/report JZ-018")
        step = await contact.taps(step[-1], "已开工")
    async with running(sqlite_url, tmp_path, fake, **redis) as (_app, db):  # a new process, same storage
        step = await contact.says("45")
        step = await contact.taps(step[-1], "跳过")  # investment
        step = await contact.taps(step[-1], "跳过")  # problems
        step = await contact.taps(step[-1], "跳过")  # next steps
        step = await contact.taps(step[-1], "跳过")  # photos
        await contact.taps(step[-1], "确认保存")
        assert (await project_row(db, "JZ-018")).progress == 45
        # going backwards in the guided report needs one more confirmation
        step = await contact.says("/report JZ-018")
        step = await contact.taps(step[-1], "已开工")
        step = await contact.taps(step[-1], "20%")
        for _ in range(4):
            step = await contact.taps(step[-1], "跳过")
        warned = await contact.taps(step[-1], "确认保存")
        assert "降到" in text_of(warned)
        assert (await project_row(db, "JZ-018")).progress == 45
        await contact.taps(warned[-1], "确认无误")
        assert (await project_row(db, "JZ-018")).progress == 20
        # cancel from any step
        step = await contact.says("/report JZ-018")
        assert "已取消" in text_of(await contact.taps(step[-1], "取消"))
    assert fake.rejected == []


HOSTILE = [
    "<script>alert('x')</script>",
    "A & B &amp; C &lt;b&gt; </b> <b> <i>",
    "a\u200bb\u200d\u2060c \u202eRTL override\u202c \u200f\u05e9\u05dc\u05d5\u05dd\u200e \ufeff",
    "<a href=\"javascript:alert(1)\">点我</a> <tg-spoiler> <pre>",
]


async def test_hostile_strings_come_back_escaped_and_accepted(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    evil = " ".join(HOSTILE)
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker, project_name=f"工程 {evil}")
    code = await invite_code(sessionmaker, "contact", "祁县", name=evil)
    fake.user(CONTACT, evil, language_code="zh-hans")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        said = await contact.says(f"/start {code}")
        said += await contact.says("/list")
        said += await contact.says("/project JZ-017")
        long_text = ("进展顺利 " + evil + " ") * 60  # some 5,000 characters
        assert len(long_text) > 5000
        said += await contact.says(f"JZ-017 80% {long_text}")
        said += await contact.says(f"JZ-017 {evil}")  # not understood: shown back
        said += await contact.says(evil)
        step = await contact.says("/report JZ-018")
        step = await contact.taps(step[-1], "已开工")
        step = await contact.says("70")
        step = await contact.taps(step[-1], "跳过")
        step = await contact.says(evil * 3)  # problems
        step = await contact.says(long_text)  # next steps
        step = await contact.taps(step[-1], "跳过")
        said += step
        said += await contact.taps(step[-1], "确认保存")
        said += await contact.presses(said[-1], await project_button(db, "dossier", "JZ-017"))
        said += await contact.presses(said[-1], await project_button(db, "file", "JZ-017"))
        said += await contact.presses(said[-1], await project_button(db, "dossier", "JZ-018"))
        said += await contact.says("/invite")
        plain = text_of(said)
        assert "<script>alert('x')</script>" in plain  # shown as text, not markup
        assert "&amp; C &lt;b&gt;" in plain
        async with db() as s:
            report = await s.scalar(select(Report).where(Report.progress == 80))
            assert report is not None and "<script>" in report.text
            guided = await s.scalar(select(Report).where(Report.progress == 70))
            assert guided is not None and guided.problems.startswith("<script>")
    assert fake.rejected == []
    assert all(r.chat_id == CONTACT for r in said)


async def test_a_flood_gets_one_polite_warning(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    async with running(sqlite_url, tmp_path, fake, throttle_per_minute=3):
        start = len(fake.sent)
        for n in range(8):
            fake.send_text(STRANGER, f"hello {n}")
        await fake.wait_for(lambda r: r.chat_id == STRANGER and r.is_message, since=start, timeout=WAIT)
        await fake.wait_idle(quiet=0.3)
        answers = [r.text or "" for r in fake.sent[start:] if r.chat_id == STRANGER and r.is_message]
        assert len(answers) == 4
        assert sum("消息太快了" in a for a in answers) == 1


async def test_the_command_menu_is_set_in_both_languages(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    async with running(sqlite_url, tmp_path, fake) as (app, _db):
        await app.set_commands()
    menus = {language: [c["command"] for c in commands] for (_scope, language), commands in fake.commands.items()}
    assert menus[""] == menus["zh"] == menus["en"]
    assert {"list", "report", "undo", "language"} <= set(menus["zh"])
    descriptions = {language: commands[0]["description"] for (_scope, language), commands in fake.commands.items()}
    assert descriptions["zh"] != descriptions["en"]


async def test_when_the_database_is_down_the_user_is_asked_to_resend(tmp_path: Path, fake: FakeTelegram) -> None:
    down = "postgresql+asyncpg://nobody@127.0.0.1:9/nothing"  # nothing listens on port 9
    async with running(down, tmp_path, fake):
        answer = await Chat(fake, CONTACT).says("JZ-017 80%")
    assert "没有</b>保存" in (answer[-1].html or "") and "过几分钟重新发送" in (answer[-1].text or "")


async def test_webhook_mode_checks_the_secret(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async with running(sqlite_url, tmp_path, fake, webhook_url=url, webhook_secret="s3cret-token",
                       webhook_host="127.0.0.1", webhook_port=port):
        for _ in range(100):  # the listener is up once the webhook is registered
            if fake.method_calls["setWebhook"]:
                break
            await asyncio.sleep(0.05)
        answer = await Chat(fake, STRANGER).says("/start")
        assert "还没有绑定" in text_of(answer)
        async with aiohttp.ClientSession() as client:
            forged = {"update_id": 1, "message": {
                "message_id": 1, "date": 0, "chat": {"id": STRANGER, "type": "private"},
                "from": {"id": STRANGER, "is_bot": False, "first_name": "x"}, "text": "/start"}}
            async with client.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
                assert resp.status == 401
    assert fake.rejected == []


def test_a_webhook_without_its_secret_does_not_start(tmp_path: Path) -> None:
    from bot.config import SettingsError
    from bot.telegram.app import webhook_settings

    settings: Settings = make_settings("sqlite+aiosqlite:///x.db", tmp_path, webhook_url="https://example.org/hook")
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        webhook_settings(settings)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_smoke_on_postgres(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    sessionmaker = make_sessionmaker(make_engine(db_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(db_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {code}")
        assert "JZ-017" in text_of(await contact.says("/list"))
        step = await contact.says("/report JZ-017")
        step = await contact.taps(step[-1], "已开工")
        step = await contact.taps(step[-1], "70%")
        step = await contact.taps(step[-1], "完成选择")
        for _ in range(4):
            step = await contact.taps(step[-1], "跳过")
        await contact.taps(step[-1], "确认保存")
        assert "已保存 JZ-018" in text_of(await contact.says("JZ-018 60%"))
        assert "已撤销 JZ-018" in text_of(await contact.says("/undo"))
        assert (await project_row(db, "JZ-017")).progress == 70
        assert (await project_row(db, "JZ-018")).progress == 30
    assert fake.rejected == []


async def test_an_oversized_photo_is_refused_with_the_limit(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake, max_photo_mb=1) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {code}")
        big = b"\xff\xd8" + b"0" * (1024 * 1024 + 1)
        answer = await contact._after(lambda: fake.send_photo(CONTACT, caption="JZ-017 80%", data=big))
        assert "超过 1 MB" in text_of(answer)
        async with db() as s:
            assert await s.scalar(select(func.count()).select_from(Report)) == 0
        assert not (tmp_path / "photos").exists()


async def test_handlers_in_flight_finish_on_shutdown(sqlite_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (app, db):
        await Chat(fake, CONTACT).says(f"/start {code}")
        fake.delay_next(1, seconds=1.0, methods=["sendMessage"])
        fake.send_text(CONTACT, "JZ-017 80%")
        for _ in range(100):  # the report is being answered when the shutdown begins
            if app.inflight.active:
                break
            await asyncio.sleep(0.02)
        assert app.inflight.active == 1
    assert any("已保存 JZ-017" in (r.text or "") for r in fake.messages_to(CONTACT))
    assert (await project_row(db, "JZ-017")).progress == 80


async def test_someone_marked_unreachable_is_reachable_again_when_they_write(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    await seed(sessionmaker)
    code = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {code}")
        async with db() as s:  # the sender got a 403 while they had blocked the bot
            await s.execute(Person.__table__.update().values(reachable=False, unreachable_reason="blocked"))
            await s.commit()
        await contact.says("/start")
        async with db() as s:
            person = await s.scalar(select(Person))
            assert person is not None and person.reachable and person.unreachable_reason == ""


@pytest.mark.slow
async def test_qingshui_run_serves_and_stops_cleanly_on_sigterm(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    env = {**os.environ, "BOT_TOKEN": f"{BOT_ID}:TEST", "TELEGRAM_API_URL": fake.base_url,
           "DATABASE_URL": sqlite_url, "DATA_DIR": str(tmp_path), "ADMIN_IDS": str(ADMIN), "QUIET_HOURS": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if fake.method_calls["getUpdates"]:
                break
            await asyncio.sleep(0.05)
        answer = await Chat(fake, ADMIN).says("/start")
        assert "管理员" in text_of(answer)  # ADMIN_IDS: an administrator from the first start
        assert fake.commands  # the command menu is set
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()


async def test_qingshui_run_without_a_token_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env={**env, "DATA_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "BOT_TOKEN" in lines[0] and "@BotFather" in lines[0]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
