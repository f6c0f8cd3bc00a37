"""Odd project codes in the chat, end to end against the fake Bot API: a county whose projects have a
40-character Chinese code, a code of digits only and codes with `.` and `_` — the list, every card
and every button on it work (each button's data fits Telegram's 64 bytes: it carries the project's id),
and a code typed in any of its spellings opens its project."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Report
from tests import factories
from tests.test_e2e_chat import CONTACT, Chat, fake, invite_code, project_row, running, text_of

__all__ = ["fake"]  # the fake Bot API fixture, shared with the chat stories

LONG_CJK = "晋中市祁县昌源河流域生态修复与水环境综合治理工程第一批次甲乙丙丁戊己庚辛壬癸子丑"
CODES = (LONG_CJK, "17", "A.B_1", "HC-003")


async def test_a_county_of_odd_codes_lists_opens_and_serves_every_button(
    sqlite_url: str, tmp_path: Path, fake: FakeTelegram
) -> None:
    assert len(LONG_CJK) == 40 and len(LONG_CJK.encode()) == 120  # twice what a button may carry
    sessionmaker = make_sessionmaker(make_engine(sqlite_url))
    async with sessionmaker() as s:
        qx = await factories.county(s, "祁县", 1)
        for number, code in enumerate(CODES, 1):
            await factories.project(s, qx, code, name=f"奇特编号工程{number}")
        await s.commit()
    invite = await invite_code(sessionmaker, "contact", "祁县")
    async with running(sqlite_url, tmp_path, fake) as (_app, db):
        contact = Chat(fake, CONTACT)
        await contact.says(f"/start {invite}")
        listed = await contact.says("/list")
        assert all(code in text_of(listed) for code in CODES)
        for number, code in enumerate(CODES, 1):
            card = (await contact.taps(listed[-1], f" {code} "))[-1]
            assert f"奇特编号工程{number}" in (card.text or "") and code in (card.text or "")
            timeline = await contact.taps(card, "档案记录")
            assert code in text_of(timeline)
            document = await contact.taps(card, "完整档案文件")
            assert document[-1].method == "sendDocument" and code in (document[-1].file_bytes or b"").decode()
            guided = await contact.taps(card, "更新进度")
            assert code in text_of(guided)
            assert "已取消" in text_of(await contact.says("/cancel"))
            saved = await contact.taps(card, "本月无变化")
            assert code in text_of(saved) and "无变化" in text_of(saved)
            undone = await contact.taps(saved[-1], "撤销这次报告")
            assert "撤销" in text_of(undone)
        async with db() as s:  # each project: a "no change" and its undo
            assert await s.scalar(select(func.count()).select_from(Report)) == 2 * len(CODES)

        # the code typed any way a person types it
        for typed in ("hc 003", "ＨＣ－００３", "HC\u200f-003", "hc-003"):
            assert "奇特编号工程4" in text_of(await contact.says(f"/project {typed}")), typed
        assert "奇特编号工程1" in text_of(await contact.says(f"/project {LONG_CJK}"))
        assert "奇特编号工程3" in text_of(await contact.says("/project a.b_1"))
        saved = await contact.says("ｈｃ－００３ ６０％")
        assert "已保存 HC-003" in text_of(saved)
        assert (await project_row(db, "HC-003")).progress == 60
        # a code of another shape, written first, reports too (in any spelling of it)
        saved = await contact.says(f"{LONG_CJK} 70% 河道清淤完成")
        assert f"已保存 {LONG_CJK}" in text_of(saved)
        assert (await project_row(db, LONG_CJK)).progress == 70
        saved = await contact.says("ａ.ｂ_１ 已开工 65%")
        assert "已保存 A.B_1" in text_of(saved)
        assert (await project_row(db, "A.B_1")).progress == 65
    assert fake.rejected == []
