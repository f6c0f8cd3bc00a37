"""The offline demo's people and what the simulated contacts do in November 2026 (data only).

The sample ledger's facts are as of 2026-10-31, so the demo lives through November 2026: the
reminder day is Friday 20 November, the deadline Wednesday 25 November, the digests go out on the
Mondays 2, 9, 16, 23 and 30. Some contacts report early, one answers a red light, one taps a
reminder's button and goes through the guided report with a photo, some report between the
follow-up and the deadline, and four never do, so their missed updates escalate.

What the contacts write is their own input (like the ledger's project names), so it stays Chinese
whatever DEFAULT_LANGUAGE is; everything the bot answers comes from the templates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.domain.states import Role

PERIOD = "2026-11"
FIRST_DAY = dt.date(2026, 11, 1)
LAST_DAY = dt.date(2026, 11, 30)


@dataclass(frozen=True)
class Cast:
    """One simulated person: a fake Telegram id, a name, a role and (for county roles) the county."""

    telegram_id: int
    name: str
    role: Role
    county: str | None = None


# Jinzhong's 11 counties in the sample ledger's order, each with its contact and its county leader.
COUNTY_PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("榆次区", "张磊", "胡志刚"),
    ("太谷区", "刘洋", "郭建华"),
    ("祁县", "陈晓东", "何文彬"),
    ("平遥县", "杨帆", "高德胜"),
    ("介休市", "赵敏", "林国庆"),
    ("灵石县", "黄海", "罗振华"),
    ("寿阳县", "周婷", "梁永红"),
    ("昔阳县", "吴强", "宋立新"),
    ("和顺县", "徐丽", "郑春明"),
    ("左权县", "孙伟", "谢宏伟"),
    ("榆社县", "马超", "韩保平"),
)
ADMIN_ID = 700_000_001
LEADER_IDS = (700_000_101, 700_000_102)
CONTACT_ID_BASE = 700_001_000  # + the county's position (1 … 11)
COUNTY_LEADER_ID_BASE = 700_002_000


def cast() -> list[Cast]:
    """Everyone the demo binds: one admin, two city leaders, then per county its contact and leader."""
    people = [
        Cast(ADMIN_ID, "周明远", Role.ADMIN),
        Cast(LEADER_IDS[0], "王建国", Role.LEADER),
        Cast(LEADER_IDS[1], "李秀梅", Role.LEADER),
    ]
    for index, (county, contact, leader) in enumerate(COUNTY_PEOPLE, start=1):
        people.append(Cast(CONTACT_ID_BASE + index, contact, Role.CONTACT, county))
        people.append(Cast(COUNTY_LEADER_ID_BASE + index, leader, Role.COUNTY_LEADER, county))
    return people


def contact_id(county: str) -> int:
    names = [c for c, _, _ in COUNTY_PEOPLE]
    return CONTACT_ID_BASE + names.index(county) + 1


# --- what the contacts do ------------------------------------------------------------------------

@dataclass(frozen=True)
class Say:
    """The contact writes a message (a one-message report, or an answer in the guided report)."""

    text: str


@dataclass(frozen=True)
class Photo:
    """The contact sends a photo, with an optional caption (a report in the caption)."""

    caption: str | None = None


@dataclass(frozen=True)
class Tap:
    """The contact presses a button of the bot's latest message that has one whose callback data starts
    with `data` (and, when given, whose label contains `label`)."""

    data: str
    label: str = ""


@dataclass(frozen=True)
class TapReminder:
    """The contact presses the report button of `code` on this month's reminder (or follow-up)."""

    code: str


Action = Say | Photo | Tap | TapReminder


@dataclass(frozen=True)
class Visit:
    """A contact's turn with the bot on `day` at `time` (city time); actions follow 20 s apart."""

    day: int  # of November 2026
    time: dt.time
    county: str
    actions: tuple[Action, ...]


ACTION_GAP = dt.timedelta(seconds=20)

VISITS: tuple[Visit, ...] = (
    # a red light (milestone 调试运行 overdue) answered: reaching a milestone is saved after confirming
    Visit(4, dt.time(10, 20), "介休市", (Say("JZ-019 93% 调试运行完成"), Tap("qa:save:"))),
    # a red light (behind plan) answered with a photo and its caption
    Visit(5, dt.time(15, 40), "祁县", (Photo("JZ-011 92% 支管入户改造收尾"),)),
    # a project past its planned finish is completed: the completion rate moves
    Visit(10, dt.time(11, 5), "和顺县", (Say("JZ-036 已完工 竣工验收通过"),)),
    # both projects of a county reported early, one of them "no change"
    Visit(12, dt.time(14, 30), "榆次区", (Say("JZ-003 68% 设备安装进行中"), Say("JZ-004 本月无变化"))),
    # late in the evening (quiet hours): the bot answers at once, notifications wait for the morning
    Visit(18, dt.time(22, 40), "寿阳县", (Say("JZ-027 95% 管网及处理设施收尾"),)),
    # the reminder's button: the guided report, step by step, with a milestone and a photo
    Visit(20, dt.time(10, 5), "祁县", (
        TapReminder("JZ-012"),
        Tap("r:status:keep"),
        Say("60"),
        Tap("r:ms:", label="治理设施建设完成"),
        Tap("r:msdone"),
        Tap("r:skip"),
        Say("入冬后需做好管网防冻"),
        Say("12月底前完成竣工验收准备"),
        Photo(),
        Tap("r:photos"),
        Tap("r:save"),
    )),
    Visit(23, dt.time(10, 10), "太谷区", (Say("JZ-008 76% 支管入户改造进入收尾"),)),
    Visit(23, dt.time(15, 30), "平遥县", (Photo("JZ-016 72% 设备调试准备中"),)),
    # after the follow-up: a project not started reports its start, the start rate moves
    Visit(24, dt.time(11, 20), "榆社县", (Say("JZ-044 已开工 5% 土方开挖"), Say("JZ-043 72% 支管入户改造推进中"))),
    # on the deadline day
    Visit(25, dt.time(16, 50), "介休市", (Say("JZ-020 无变化"),)),
    # 灵石县, 昔阳县 and 左权县 never report, nor does 寿阳县 on JZ-028: their updates escalate
)
