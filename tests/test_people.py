"""Onboarding: one-time invites stored hashed, redeemed once and before they expire; the CLI prints the
deep link (or the code and how to build it) and lists who is bound."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import people as people_command
from bot.domain.columns import display_width
from bot.errors import UserError
from bot.services.people import (
    InviteError,
    RedeemFailure,
    create_invite,
    ensure_admin,
    hash_code,
    list_people,
    redeem,
    writer_of_update,
)
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Invite, Person, ProcessedUpdate, utcnow
from tests import factories
from tests.conftest import make_settings

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)


async def test_an_invite_binds_once_and_is_stored_hashed(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        code, invite = await create_invite(s, role="contact", county=qx, name="王联络", ttl=WEEK, now=NOW)
        assert len(code) >= 16 and code.replace("-", "").replace("_", "").isalnum()
        assert invite.code_hash == hash_code(code) and code not in invite.code_hash

        person = await redeem(s, code, telegram_id=5001, telegram_name="Wang", language="zh", now=NOW)
        assert isinstance(person, Person)
        assert (person.name, person.role, person.county_id, person.telegram_id) == ("王联络", "contact", qx.id, 5001)

        again = await redeem(s, code, telegram_id=5002, telegram_name="Li", language="zh", now=NOW)
        assert again == RedeemFailure("used")
        assert await redeem(s, "no-such-code", telegram_id=5002, telegram_name="Li", language="zh",
                            now=NOW) == RedeemFailure("unknown")
        stored = await s.scalar(select(Invite))
        assert stored is not None and stored.person_id == person.id and stored.used_at == NOW


async def test_an_expired_invite_is_refused(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        code, _ = await create_invite(s, role="leader", county=None, ttl=WEEK, now=NOW)
        late = NOW + WEEK + dt.timedelta(seconds=1)
        assert await redeem(s, code, telegram_id=1, telegram_name="x", language="zh", now=late) == RedeemFailure(
            "expired")
        assert await s.scalar(select(Person)) is None


async def test_a_new_invite_changes_a_bound_persons_role(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        first, _ = await create_invite(s, role="contact", county=qx, ttl=WEEK, now=NOW)
        second, _ = await create_invite(s, role="county_leader", county=qx, ttl=WEEK, now=NOW)
        await redeem(s, first, telegram_id=7, telegram_name="Zhao", language="en", now=NOW)
        person = await redeem(s, second, telegram_id=7, telegram_name="Zhao", language="zh", now=NOW)
        assert isinstance(person, Person) and person.role == "county_leader" and person.language == "en"
        assert len(await list_people(s)) == 1


async def test_invites_need_a_county_exactly_for_county_roles(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        with pytest.raises(InviteError, match="county_required"):
            await create_invite(s, role="contact", county=None, ttl=WEEK)
        with pytest.raises(InviteError, match="county_not_allowed"):
            await create_invite(s, role="leader", county=qx, ttl=WEEK)
        with pytest.raises(InviteError, match="unknown_role"):
            await create_invite(s, role="mayor", county=None, ttl=WEEK)


async def test_admin_ids_become_and_stay_administrators(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        qx = await factories.county(s)
        await factories.person(s, "contact", qx, telegram_id=42)
        person = await ensure_admin(s, telegram_id=42, telegram_name="Boss", language="zh")
        assert person.role == "admin"
        fresh = await ensure_admin(s, telegram_id=43, telegram_name="New", language="en")
        assert (fresh.role, fresh.name, fresh.language) == ("admin", "New", "en")


async def test_the_cli_prints_the_code_and_lists_people(sqlite_url: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(sqlite_url, tmp_path, bot_token=None)
    engine = make_engine(sqlite_url)
    async with make_sessionmaker(engine)() as s:
        await factories.county(s, "祁县")
        await s.commit()
    await engine.dispose()

    args = argparse.Namespace(command="invite", role="contact", county="祁县", name="王联络")
    assert await people_command.main(args, settings) == 0
    out = capsys.readouterr().out
    assert "https://t.me/<机器人用户名>?start=" in out and "邀请码：" in out
    code = out.split("邀请码：")[1].split()[0]

    named = make_settings(sqlite_url, tmp_path, bot_token=None, bot_username="@qingshui_bot")
    assert await people_command.main(argparse.Namespace(command="invite", role="leader", county=None, name=""),
                                     named) == 0
    assert "https://t.me/qingshui_bot?start=" in capsys.readouterr().out

    engine = make_engine(sqlite_url)
    async with make_sessionmaker(engine)() as s:
        await redeem(s, code, telegram_id=5001, telegram_name="Wang", language="zh")
        await s.execute(Person.__table__.update().values(reachable=False, unreachable_reason="blocked"))
        await s.commit()
    await engine.dispose()
    assert await people_command.main(argparse.Namespace(command="people"), settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["姓名", "角色", "县区", "能否送达", "语言"]
    assert lines[1].split() == ["王联络", "县区联络员", "祁县", "不能（blocked）", "zh"]
    # columns line up in a terminal, where a Chinese character takes two columns
    assert display_width(lines[0].split("角色")[0]) == display_width(lines[1].split("县区联络员")[0])


async def test_the_cli_refuses_an_unknown_county(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(sqlite_url, tmp_path, bot_token=None)
    with pytest.raises(UserError, match="榆次区"):
        await people_command.main(argparse.Namespace(command="invite", role="contact", county="榆次区", name=""),
                                  settings)


async def test_the_writer_and_whether_their_update_was_handled(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        county = await factories.county(s, "祁县", 1)
        contact = await factories.person(s, "contact", county, name="王联络", telegram_id=5001)
        s.add(ProcessedUpdate(update_id=77, at=utcnow()))
        await s.commit()
    async with sessionmaker() as s:
        person, handled = await writer_of_update(s, 5001, 78)
        assert person is not None and person.id == contact.id and handled is False
        person, handled = await writer_of_update(s, 5001, 77)  # delivered again
        assert person is not None and handled is True
        assert await writer_of_update(s, 9999, 77) == (None, None)  # a stranger: nothing said
