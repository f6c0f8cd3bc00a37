"""`qingshui invite --county …` with a mistyped county, and `qingshui people` showing the invites still
waiting to be used."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.__main__ import main
from bot.cli import people as people_command
from bot.config import Settings
from bot.errors import UserError
from bot.services.people import create_invite, find_county, redeem
from tests import factories

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)  # 10:00 in Jinzhong
WEEK = dt.timedelta(days=7)


def invite_args(county: str, role: str = "contact") -> argparse.Namespace:
    return argparse.Namespace(command="invite", role=role, county=county, name="王联络")


async def seed_counties(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        await factories.county(s, "祁县", 1)
        await factories.county(s, "平遥县", 2)
        await s.commit()


@pytest.mark.parametrize(("lang", "words"), [("zh", "是不是「祁县」？请用 --county 祁县"),
                                             ("en", 'did you mean "祁县"? Use --county 祁县')])
async def test_a_mistyped_county_gets_the_closest_one_suggested(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, lang: str, words: str
) -> None:
    await seed_counties(sessionmaker)
    with pytest.raises(UserError) as refused:
        await people_command.main(invite_args("祁"), settings.model_copy(update={"default_language": lang}))
    assert "祁" in str(refused.value) and words in str(refused.value)


async def test_a_county_nothing_resembles_is_a_clear_error(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await seed_counties(sessionmaker)
    with pytest.raises(UserError) as refused:
        await people_command.main(invite_args("北京市海淀区"), settings)
    assert str(refused.value) == "没有名为「北京市海淀区」的县区：请检查县区名称（qingshui stats 列出全部县区）。"


async def test_before_any_county_is_known_it_says_to_import_first(settings: Settings) -> None:
    with pytest.raises(UserError, match="请先导入台账"):
        await people_command.main(invite_args("祁县"), settings)


async def test_a_county_typed_with_a_space_or_full_width_is_found(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_counties(sessionmaker)
    assert await people_command.main(invite_args("祁 县"), settings.model_copy(update={"bot_token": None})) == 0
    assert "县区联络员 · 祁县 · 王联络" in capsys.readouterr().out


async def test_people_lists_the_invites_not_yet_used(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await seed_counties(sessionmaker)
    async with sessionmaker() as s:
        qx, py = await find_county(s, "祁县"), await find_county(s, "平遥县")
        await create_invite(s, role="contact", county=qx, name="王联络", ttl=WEEK, now=NOW)
        await create_invite(s, role="leader", county=None, name="", ttl=dt.timedelta(days=2), now=NOW)
        used, _ = await create_invite(s, role="county_leader", county=py, name="李县长", ttl=WEEK, now=NOW)
        await redeem(s, used, telegram_id=7001, telegram_name="Li", language="zh", now=NOW)
        await create_invite(s, role="contact", county=py, name="过期的", ttl=WEEK, now=NOW - 2 * WEEK)

    out = await people_command.people(settings, now=NOW)
    bound, _, waiting = out.partition("尚未使用的邀请（2 个）：")
    assert "李县长" in bound  # bound people first, as before
    rows = [line.split() for line in waiting.strip().splitlines()]
    assert rows[0] == ["角色", "县区", "姓名", "有效期至"]
    # soonest to expire first; expiry in the city's time zone (UTC+8)
    assert rows[1] == ["市级领导", "全市", "—", "2026-11-22", "10:00"]
    assert rows[2] == ["县区联络员", "祁县", "王联络", "2026-11-27", "10:00"]
    assert "过期的" not in out and len(rows) == 3


async def test_people_with_nobody_bound_still_shows_waiting_invites(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await seed_counties(sessionmaker)
    async with sessionmaker() as s:
        await create_invite(s, role="admin", county=None, name="Ada", ttl=WEEK, now=NOW)
    out = await people_command.people(settings.model_copy(update={"default_language": "en"}), now=NOW)
    assert out.startswith("Nobody is bound yet.")
    assert "Invites not used yet (1):" in out and "Ada" in out and "2026-11-27 10:00" in out


def test_the_command_line_suggests_the_county(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert main(["import", "--sample"]) == 0
    capsys.readouterr()
    assert main(["invite", "--role", "contact", "--county", "祁"]) == 1
    err = capsys.readouterr().err
    assert "是不是「祁县」" in err and "Traceback" not in err
