"""Channels (README "Channels"): the weekly digest and the alerts reach a WeCom, a DingTalk and a
Feishu group robot and an e-mail inbox — fake robots and an SMTP server on 127.0.0.1 — with the chart
and workbook where the kind allows, signatures checked, the robots' limits never hit, nothing lost or
doubled; a robot that refuses its key tells the admins once."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.__main__ import build_parser
from bot.channels.compose import text_steps
from bot.channels.sender import ChannelSender
from bot.channels.store import add_channel
from bot.cli import channel as channel_command
from bot.config import Settings
from bot.errors import UserError
from bot.ledger.io import import_sample
from bot.store.models import Channel, County, Outbox, Person, Project
from jobs.base import JobContext
from jobs.channel_routing import channel_rows
from jobs.registry import run_job
from tests.robots import FakeDingTalk, FakeFeishu, FakeRobot, FakeWeCom, VirtualTime, markdown_of, serving

SH = ZoneInfo("Asia/Shanghai")
MONDAY = dt.datetime(2026, 11, 2, 9, 0, tzinfo=SH)  # the digest's moment
ALERT_DAY = dt.datetime(2026, 11, 20, 10, 0, tzinfo=SH)  # the sample shows four yellow and four red


class Inbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd's start checks the port it was given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


async def sample(sm: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    await import_sample(sm, now=dt.datetime(2026, 11, 1, 8, 0, tzinfo=SH))
    async with sm() as s:
        counties = {c.name: c for c in await s.scalars(select(County))}
        admin = Person(telegram_id=9003, name="刘管理", role="admin")
        s.add(admin)
        await s.commit()
        return {"counties": counties, "admin": admin.id}


async def add(sm: async_sessionmaker[AsyncSession], name: str, kind: str, target: str, *, secret: str = "",
              county: County | None = None, sends: str = "digest,alerts") -> Channel:
    async with sm() as s:
        return await add_channel(s, name=name, kind=kind, target=target, secret=secret, county=county, sends=sends)


async def run(sm: async_sessionmaker[AsyncSession], settings: Settings, job: str, now: dt.datetime) -> int:
    async with sm() as s:
        return (await run_job(s, job, now.astimezone(dt.UTC), JobContext.from_settings(settings))).queued


def sender_for(sm: async_sessionmaker[AsyncSession], settings: Settings, clock: VirtualTime) -> ChannelSender:
    return ChannelSender(sm, settings, clock=clock.now, monotonic=clock.monotonic, sleep=clock.sleep, name="test")


async def outbox(sm: async_sessionmaker[AsyncSession], channel_id: int | None = None) -> list[Outbox]:
    async with sm() as s:
        query = select(Outbox).order_by(Outbox.id)
        if channel_id is not None:
            query = query.where(Outbox.channel_id == channel_id)
        return list(await s.scalars(query))


def parts(message: EmailMessage) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in message.walk():
        found.setdefault(part.get_content_type(), part)
    return found


async def test_the_weekly_digest_reaches_every_kind_with_chart_and_workbook_where_it_can(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}", "smtp_from": "qingshui@example.org"})
    seeded = await sample(sessionmaker)
    qixian = seeded["counties"]["祁县"]
    clock = VirtualTime(MONDAY.astimezone(dt.UTC))
    wecom = FakeWeCom(clock)
    dingtalk = FakeDingTalk(clock, secret="SECdingtalk-secret")
    feishu = FakeFeishu(clock, secret="feishu-secret")
    async with serving(wecom, dingtalk, feishu):
        await add(sessionmaker, "祁县企业微信群", "wecom", wecom.url, county=qixian)
        await add(sessionmaker, "市领导钉钉群", "dingtalk", dingtalk.url, secret=dingtalk.secret)
        await add(sessionmaker, "市领导飞书群", "feishu", feishu.url, secret=feishu.secret)
        await add(sessionmaker, "祁县邮箱", "email", "leader@qixian.example.org, office@qixian.example.org",
                  county=qixian)
        assert await run(sessionmaker, settings, "digest", MONDAY) > 0
        sent = await sender_for(sessionmaker, settings, clock).drain_once()

    rows = [r for r in await outbox(sessionmaker) if r.channel_id is not None]
    assert sent == len(rows) and {r.state for r in rows} == {"sent"}
    # WeCom: the county's digest in markdown parts under 4,096 bytes, then the chart and the workbook
    kinds = [body["msgtype"] for body in wecom.received]
    assert kinds[-2:] == ["image", "file"] and set(kinds[:-2]) == {"markdown"}
    text = "\n".join(markdown_of(wecom, body) for body in wecom.received[:-2])
    assert "清水周报 · 祁县" in text and "下面两条消息" in text
    assert all(len(markdown_of(wecom, b).encode()) <= 4096 for b in wecom.received[:-2])
    assert wecom.received[-2]["image"]["bytes"].startswith(b"\x89PNG")
    assert wecom.received[-1]["file"]["filename"].endswith(".xlsx")
    assert wecom.received[-1]["file"]["bytes"].startswith(b"PK")
    # DingTalk and Feishu: the city's digest, signed (the fakes refuse a bad signature), saying where the files are
    for robot in (dingtalk, feishu):
        city = "\n".join(markdown_of(robot, body) for body in robot.received)
        assert "清水周报 · 全市" in city and "共 44 个项目" in city and "Excel 台账随本周周报邮件发送" in city
        assert robot.errors == []
    assert wecom.errors == []
    # e-mail: HTML with a plain alternative, the chart inline (referenced by its Content-ID), the workbook attached
    assert len(handler.messages) == 1
    recipients, message = handler.messages[0]
    assert recipients == ["leader@qixian.example.org", "office@qixian.example.org"]
    assert "清水周报 · 祁县" in str(message["Subject"])
    found = parts(message)
    assert "清水周报 · 祁县" in found["text/plain"].get_content()
    html_body = found["text/html"].get_content()
    cid = found["image/png"]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html_body
    workbook = found["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    assert workbook.get_filename().endswith(".xlsx") and workbook.get_content().startswith(b"PK")
    # a second run the same week queues nothing more for anyone
    assert await run(sessionmaker, settings, "digest", MONDAY + dt.timedelta(hours=3)) == 0


@pytest.mark.parametrize("robot_class", [FakeWeCom, FakeDingTalk, FakeFeishu])
async def test_a_wave_over_a_robots_limit_loses_nothing_and_keeps_its_order(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, robot_class: type[FakeRobot]
) -> None:
    clock = VirtualTime(MONDAY.astimezone(dt.UTC))
    robot = robot_class(clock, secret="s3cret" if robot_class is not FakeWeCom else "")
    count = 130 if robot_class is FakeFeishu else 45  # more than two minutes' worth for every kind
    async with serving(robot):
        channel = await add(sessionmaker, "县区群", robot.kind, robot.url, secret=robot.secret)
        async with sessionmaker() as s:
            from bot.store.outbox import enqueue_many

            steps = [step for n in range(count) for step in text_steps(robot.kind, "t", f"第 {n} 条")]
            renumbered = [(n, method, payload) for n, (_, method, payload) in enumerate(steps)]
            await enqueue_many(s, channel_rows(channel, "alert", "wave", renumbered, clock.now()))
            await s.commit()
        sent = await sender_for(sessionmaker, settings, clock).drain_once()
    assert sent == count
    assert robot.errors == []  # never "too fast": the pace kept under the limit
    assert [markdown_of(robot, body) for body in robot.received] == [f"第 {n} 条" for n in range(count)]
    assert {r.state for r in await outbox(sessionmaker, channel.id)} == {"sent"}


async def test_a_too_fast_answer_waits_and_sends_later_without_burning_an_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    clock = VirtualTime(MONDAY.astimezone(dt.UTC))
    robot = FakeDingTalk(clock)
    async with serving(robot):
        channel = await add(sessionmaker, "钉钉群", "dingtalk", robot.url)
        async with sessionmaker() as s:
            from bot.store.outbox import enqueue_many

            await enqueue_many(s, channel_rows(channel, "alert", "1", text_steps("dingtalk", "t", "红灯"), clock.now()))
            await s.commit()
        robot.sends.extend([clock.monotonic()] * 20)  # someone else used this robot's minute
        sender = sender_for(sessionmaker, settings, clock)
        assert await sender.drain_once() == 0
        [row] = await outbox(sessionmaker, channel.id)
        assert (row.state, row.attempts) == ("pending", 0) and "130101" in row.last_error
        assert row.not_before >= clock.now() + dt.timedelta(minutes=10)  # DingTalk's block is waited out
        clock.advance(601)
        assert await sender.drain_once() == 1
    [row] = await outbox(sessionmaker, channel.id)
    assert (row.state, row.attempts) == ("sent", 1)
    assert [markdown_of(robot, b) for b in robot.received] == ["红灯"]


async def test_a_robot_refusing_its_signature_kills_the_messages_and_tells_the_admins_once(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = await sample(sessionmaker)
    clock = VirtualTime(ALERT_DAY.astimezone(dt.UTC))
    robot = FakeFeishu(clock, secret="the-right-secret")
    async with serving(robot):
        channel = await add(sessionmaker, "飞书群", "feishu", robot.url, secret="a-wrong-secret")
        async with sessionmaker() as s:
            from bot.store.outbox import enqueue_many

            steps = [(n, "markdown", {"title": "t", "text": f"预警 {n}"}) for n in range(3)]
            await enqueue_many(s, channel_rows(channel, "alert", "1", steps, clock.now()))
            await s.commit()
        await sender_for(sessionmaker, settings, clock).drain_once()
    rows = await outbox(sessionmaker)
    mine = [r for r in rows if r.channel_id == channel.id]
    assert {r.state for r in mine} == {"dead"} and all("19021" in r.last_error for r in mine)
    told = [r for r in rows if r.person_id == seeded["admin"]]
    assert len(told) == 1 and "飞书群" in told[0].payload["text"] and "19021" in told[0].payload["text"]
    # `channel list` shows the failure, the secret and the key masked
    await channel_command.main(argparse.Namespace(command="channel", channel_command="list"), settings)
    listed = capsys.readouterr().out
    assert "飞书群" in listed and "19021" in listed and "0/3" in listed
    assert robot.token not in listed and "a-wrong-secret" not in listed and "已设置" in listed


async def test_alerts_go_to_their_countys_group_and_the_city_group_only_once_they_reach_city_leaders(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    seeded = await sample(sessionmaker)
    counties = seeded["counties"]
    by_county = {}
    for name in counties:
        by_county[name] = await add(sessionmaker, f"{name}群", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                                    county=counties[name])
    city = await add(sessionmaker, "市级群", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=t")
    assert await run(sessionmaker, settings, "alerts", ALERT_DAY) > 0
    async with sessionmaker() as s:
        codes = {p.code: p.county_id for p in await s.scalars(select(Project))}
    rows = [r for r in await outbox(sessionmaker) if r.channel_id is not None]
    assert rows and not [r for r in rows if r.channel_id == city.id]  # step 1: not the city's yet
    for row in rows:
        county_id = next(c.county_id for c in by_county.values() if c.id == row.channel_id)
        mentioned = [code for code in codes if code in row.payload["text"]]
        assert mentioned and all(codes[code] == county_id for code in mentioned)
    # three and then four more working days without change: the escalations reach the city leaders
    later = ALERT_DAY
    for _ in range(2):
        later += dt.timedelta(days=7)
        await run(sessionmaker, settings, "alerts", later)
    city_rows = [r for r in await outbox(sessionmaker) if r.channel_id == city.id]
    assert city_rows and all(":3." in r.key for r in city_rows)


async def test_the_command_line_adds_tests_lists_and_removes_a_channel(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, capsys: pytest.CaptureFixture[str],
    tmp_path: Path
) -> None:
    await sample(sessionmaker)
    parser = build_parser("zh")
    clock = VirtualTime(MONDAY.astimezone(dt.UTC))
    robot = FakeWeCom(clock)
    async with serving(robot):
        with pytest.raises(UserError, match="是否是“祁县”"):
            await channel_command.main(parser.parse_args(
                ["channel", "add", "群", "--kind", "wecom", "--target", robot.url, "--county", "祁"]), settings)
        with pytest.raises(UserError, match="只发给县区群"):
            await channel_command.main(parser.parse_args(
                ["channel", "add", "群", "--kind", "wecom", "--target", robot.url, "--send", "reminders"]), settings)
        assert await channel_command.main(parser.parse_args(
            ["channel", "add", "祁县群", "--kind", "wecom", "--target", robot.url, "--county", "祁县",
             "--send", "digest,alerts,reminders"]), settings) == 0
        assert "已添加通知渠道“祁县群”" in capsys.readouterr().out
        assert await channel_command.main(parser.parse_args(["channel", "test", "祁县群"]), settings) == 0
        assert "测试消息已发到“祁县群”" in capsys.readouterr().out
        assert "清水测试消息" in markdown_of(robot, robot.received[0])
        await channel_command.main(parser.parse_args(["channel", "list"]), settings)
        listed = capsys.readouterr().out
        assert "祁县群" in listed and "祁县" in listed and robot.token not in listed and "…0001" in listed
        with pytest.raises(UserError, match="已被使用"):
            await channel_command.main(parser.parse_args(
                ["channel", "add", "祁县群", "--kind", "wecom", "--target", robot.url]), settings)
        assert await channel_command.main(parser.parse_args(["channel", "remove", "祁县群"]), settings) == 0
        await channel_command.main(parser.parse_args(["channel", "list"]), settings)
        assert "还没有通知渠道" in capsys.readouterr().out.split("\n", 1)[-1]


async def test_nothing_leaves_for_a_robot_in_quiet_hours(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    clock = VirtualTime(dt.datetime(2026, 11, 2, 22, 30, tzinfo=SH).astimezone(dt.UTC))
    robot = FakeWeCom(clock)
    async with serving(robot):
        channel = await add(sessionmaker, "群", "wecom", robot.url)
        async with sessionmaker() as s:
            from bot.store.outbox import enqueue_many

            await enqueue_many(s, channel_rows(channel, "alert", "1", text_steps("wecom", "t", "夜里"), clock.now()))
            await s.commit()
        assert await sender_for(sessionmaker, settings, clock).drain_once() == 0
        await asyncio.sleep(0)
    assert robot.received == []


async def test_a_sender_counts_what_another_instance_just_sent_to_the_same_robot(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    clock = VirtualTime(MONDAY.astimezone(dt.UTC))
    robot = FakeWeCom(clock)
    async with serving(robot):
        channel = await add(sessionmaker, "群", "wecom", robot.url)
        async with sessionmaker() as s:
            from bot.store.outbox import enqueue_many

            earlier = [(n, "markdown", {"title": "t", "text": f"早 {n}"}) for n in range(19)]
            await enqueue_many(s, channel_rows(channel, "alert", "earlier", earlier, clock.now()))
            await enqueue_many(s, channel_rows(channel, "alert", "now", text_steps("wecom", "t", "新"), clock.now()))
            await s.commit()
            # the other instance sent the first 19 ten seconds ago: a full minute's worth
            for row in await s.scalars(select(Outbox).order_by(Outbox.id).limit(19)):
                row.state, row.sent_at = "sent", clock.now() - dt.timedelta(seconds=10)
            await s.commit()
        assert await sender_for(sessionmaker, settings, clock).drain_once() == 1
    assert [markdown_of(robot, b) for b in robot.received] == ["新"]
    assert clock.monotonic() >= 50  # it waited for the other instance's sends to age out of the minute


async def test_a_county_group_that_asked_for_reminders_gets_its_countys_missing_projects(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    seeded = await sample(sessionmaker)
    qixian = seeded["counties"]["祁县"]
    url = "https://oapi.dingtalk.com/robot/send?access_token=t"
    asked = await add(sessionmaker, "祁县钉钉群", "dingtalk", url, county=qixian, sends="reminders")
    other = await add(sessionmaker, "平遥县钉钉群", "dingtalk", url, county=seeded["counties"]["平遥县"])
    await run(sessionmaker, settings, "reminders", ALERT_DAY)
    async with sessionmaker() as s:
        missing = {p.code for p in await s.scalars(select(Project).where(
            Project.county_id == qixian.id, Project.status != "completed"))}
        codes = {p.code for p in await s.scalars(select(Project))}
    [row] = await outbox(sessionmaker, asked.id)
    listed = {code for code in codes if code in row.payload["text"]}
    assert listed == missing and "祁县" in row.payload["text"] and "月度进展填报" in row.payload["text"]
    assert await outbox(sessionmaker, other.id) == []  # it asked for digest and alerts only
    assert await run(sessionmaker, settings, "reminders", ALERT_DAY) == 0  # queued once


async def test_a_county_groups_reminder_list_is_not_sent_after_the_months_deadline(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """The service was down from the 20th to December: November's list of missing projects would be
    wrong by then, so it is marked expired, never posted (as a contact's reminder is)."""
    seeded = await sample(sessionmaker)
    clock = VirtualTime(dt.datetime(2026, 12, 1, 10, 0, tzinfo=SH).astimezone(dt.UTC))
    robot = FakeWeCom(clock)
    async with serving(robot):
        group = await add(sessionmaker, "祁县群", "wecom", robot.url, county=seeded["counties"]["祁县"],
                          sends="reminders")
        await run(sessionmaker, settings, "reminders", ALERT_DAY)
        await sender_for(sessionmaker, settings, clock).drain_once()
    assert robot.received == []
    assert {row.state for row in await outbox(sessionmaker, group.id)} == {"expired"}


def test_a_project_named_like_markdown_reads_as_written_in_a_robots_message() -> None:
    from bot.texts import environment

    shown = environment().from_string("{{ name|md }}").render(name="*新建* [管网](http://x) _一期_ #2 `a|b`")
    assert not set("*[]_#`|") & set(shown)
    assert shown == "＊新建＊ ［管网］(http://x) ＿一期＿ ＃2 ｀a｜b｀"


def test_every_name_a_user_typed_goes_through_the_markdown_filter_in_robot_templates() -> None:
    import re
    from pathlib import Path

    names = re.compile(r"\{\{ (?:a|p|r|m|f)\.(?:code|name|county|milestone) \}\}|\{\{ (?:county|channel) \}\}")
    for template in Path("templates").glob("*/channel_*.md"):
        assert not names.findall(template.read_text(encoding="utf-8")), template


def test_a_robots_key_is_never_shown_whole() -> None:
    """`channel list` and /channels show a robot's address with its key hidden, wherever the robot keeps it:
    in the query (with other parameters after it), or at the end of the path (with a trailing slash)."""
    from bot.channels.base import mask_target

    cases = {
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY123456&debug=1":
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…3456&debug=…",
        "https://open.feishu.cn/open-apis/bot/v2/hook/abcdef-secret-123456/":
            "https://open.feishu.cn/open-apis/bot/v2/hook/…3456/",
        "https://oapi.dingtalk.com/robot/send?access_token=TOKEN987654321":
            "https://oapi.dingtalk.com/robot/send?access_token=…4321",
        "https://hooks.example/x/abcdefghijklmnopqrstu?tag=1": "https://hooks.example/x/…rstu?tag=…",
    }
    for target, shown in cases.items():
        assert mask_target("wecom", target) == shown
        assert not any(secret in shown for secret in ("SECRETKEY", "secret-12", "TOKEN98", "abcdefghij"))
    assert mask_target("email", "ops@jz.gov.cn") == "ops@jz.gov.cn"


async def test_a_digest_without_its_chart_or_workbook_does_not_point_to_them(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """When the chart or the workbook could not be built the text still goes (README "Channels"); then it
    neither shows a broken picture nor points to an attachment or a message that is not there."""
    from bot.channels.compose import digest_steps
    from bot.domain.lights import LightRules
    from bot.services.digest import figures_for, gather

    await sample(sessionmaker)
    rules = LightRules.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    async with sessionmaker() as s:
        f = figures_for(await gather(s, MONDAY.astimezone(dt.UTC), SH, rules), None, SH)
    deadline = dt.date(2026, 11, 10)
    for lang, attached, follows in (("zh", "台账见附件", "下一条消息"), ("en", "ledger attached", "next message")):
        def email(chart: str | None, ledger: str | None, lang: str = lang) -> dict[str, Any]:
            step = digest_steps("email", lang, f=f, limit=10, deadline=deadline, chart=chart, ledger=ledger)
            return step[0][2]

        whole, bare, chart_only = email("c.png", "l.xlsx"), email(None, None), email("c.png", None)
        assert "cid:chart" in whole["html"] and attached in whole["html"] + whole["plain"]
        assert "cid:chart" not in bare["html"] and attached not in bare["html"] + bare["plain"]
        assert "📎" not in bare["plain"]
        assert "cid:chart" in chart_only["html"] and attached not in chart_only["html"] + chart_only["plain"]
        wecom = digest_steps("wecom", lang, f=f, limit=10, deadline=deadline, chart=None, ledger="l.xlsx")
        text = "\n".join(str(step[2].get("text", "")) for step in wecom)
        assert follows in text and [step[1] for step in wecom][-1] == "file"


async def test_a_chart_gone_from_disk_is_given_up_at_once_and_the_text_still_goes(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A WeCom group's chart or workbook that is no longer on disk (DATA_DIR cleaned, a restore) does not
    come back by retrying: it is marked dead on the first try, as e-mail does, and the text before it goes."""
    from bot.store.outbox import enqueue_many

    clock = VirtualTime(MONDAY.astimezone(dt.UTC))
    robot = FakeWeCom(clock)
    async with serving(robot):
        channel = await add(sessionmaker, "祁县群", "wecom", robot.url)
        steps = [*text_steps("wecom", "t", "周报"), ("chart", "image", {"path": "digests/gone.png"}),
                 ("ledger", "file", {"path": "digests/gone.xlsx", "filename": "台账.xlsx"})]
        async with sessionmaker() as s:
            await enqueue_many(s, channel_rows(channel, "digest", "w", steps, clock.now()))
            await s.commit()
        assert await sender_for(sessionmaker, settings, clock).drain_once() == 1
    rows = await outbox(sessionmaker, channel.id)
    assert sorted(r.state for r in rows) == ["dead", "dead", "sent"]
    assert all(r.attempts == 1 for r in rows if r.state == "dead")
    assert [b["msgtype"] for b in robot.received] == ["markdown"]
