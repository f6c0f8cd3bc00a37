"""`qingshui demo`: the whole service offline through November 2026, checked the way a person would
check its output folder — the index page, the messages each kind of person got, the digests'
pictures and workbooks, and the summary's rates.

The demo runs once for this module; the settings point at a token, a Bot
API server, a database and a Redis that do not exist, to show the demo uses none of them."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.__main__ import main
from bot.demo.runner import MARKER, prepare_out
from bot.errors import UserError
from bot.store.db import make_engine, make_sessionmaker
from bot.store.models import Person, Project, Report

slow = pytest.mark.slow  # every test that looks at the month (the run takes half a minute)

MONDAYS = {dt.date(2026, 11, day) for day in (2, 9, 16, 23, 30)}
CODE = re.compile(r"JZ-\d{3}")


@dataclass
class Demo:
    exit_code: int
    stdout: str
    out: Path
    timeline: dict[str, Any]

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [e for e in self.timeline["entries"] if not e["incoming"]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e["kind"] == kind]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("demo")
    out = home / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)  # no .env from the working tree
        mp.setenv("DATA_DIR", str(home))
        mp.setenv("DEFAULT_LANGUAGE", "zh")
        mp.setenv("BOT_TOKEN", "999:NOT-A-REAL-TOKEN")
        mp.setenv("TELEGRAM_API_URL", "http://192.0.2.1:9")  # TEST-NET: any request to it would hang
        mp.setenv("DATABASE_URL", "postgresql+asyncpg://nobody@192.0.2.1:9/none")
        mp.setenv("REDIS_URL", "redis://192.0.2.1:9/0")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["demo", "--out", str(out)])
    timeline = json.loads((out / "timeline.json").read_text(encoding="utf-8")) if out.is_dir() else {}
    yield Demo(code, printed.getvalue(), out, timeline)


@slow
def test_the_demo_runs_and_summarises_the_month(demo: Demo) -> None:
    assert demo.exit_code == 0, demo.stdout
    index = demo.out / "index.html"
    assert index.is_file()
    assert f"索引页：{index}" in demo.stdout
    # the sample ledger starts at the seed's figures; a completion and a start reported during the month
    assert "完工率 64% → 66%" in demo.stdout and "开工率 93% → 95%" in demo.stdout
    assert "没有未发出的消息" in demo.stdout


@slow
def test_the_index_page_links_every_recorded_file(demo: Demo) -> None:
    messages = demo.out / "messages"
    recorded = {p.name for p in messages.iterdir()}
    assert len(recorded) > 100 and "index.html" in recorded  # the fake's own record of every call
    page = (demo.out / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+)"', page))
    assert {f"messages/{name}" for name in recorded} <= links
    assert all((demo.out / link).is_file() for link in links)


@slow
def test_the_index_page_shows_the_charts_and_names_a_cjk_font_stack(demo: Demo) -> None:
    page = (demo.out / "index.html").read_text(encoding="utf-8")
    charts = {p.name for p in (demo.out / "messages").glob("*.png")}
    assert charts  # the weekly digest's chart
    shown = set(re.findall(r'<img src="messages/([^"]+)"', page))
    assert shown == charts
    for font in ("Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC"):
        assert font in page  # reads right on a machine without Noto


@slow
def test_telegram_accepted_everything_and_nothing_was_left_unsent(demo: Demo) -> None:
    assert demo.timeline["rejected"] == []  # e.g. no HTML Telegram would refuse, no button too long
    assert demo.timeline["undelivered"] == []
    assert demo.timeline["errors"] == []


@slow
def test_reminders_and_alerts_reach_the_right_people(demo: Demo) -> None:
    roles = {"reminder": set(), "followup": set(), "resolved": set()} | {f"alert:{s}": set() for s in "123"}
    for e in demo.sent:
        key = f"alert:{e['step']}" if e["kind"] == "alert" else e["kind"]
        if key in roles:
            roles[key].add(e["role"])
    assert roles["reminder"] == {"contact"}
    assert roles["followup"] == {"contact"}
    assert roles["alert:1"] == {"contact"}
    assert roles["alert:2"] == {"county_leader"}  # escalated after working days without change
    assert roles["alert:3"] == {"leader"}
    assert {"contact", "county_leader", "leader"} <= roles["resolved"]  # whoever was alerted hears it is over


async def _missing_at(out: Path) -> Any:
    """A function telling, for a moment, the codes per county still without a November report."""
    engine = make_engine(f"sqlite+aiosqlite:///{out / 'data' / 'qingshui.db'}")
    try:
        async with make_sessionmaker(engine)() as session:
            projects = list(await session.scalars(select(Project)))
            reports = (await session.execute(
                select(Report.project_id, Report.created_at).where(Report.kind.in_(("progress", "no_change")))
            )).all()
    finally:
        await engine.dispose()
    first_report: dict[int, dt.datetime] = {}
    for project_id, at in reports:
        first_report[project_id] = min(at, first_report.get(project_id, at))
    # projects completed before November need no monthly report
    needing = [p for p in projects if p.status != "completed" or p.id in first_report]

    def missing(at: dt.datetime) -> dict[int, set[str]]:
        by_county: dict[int, set[str]] = defaultdict(set)
        for p in needing:
            if p.id not in first_report or first_report[p.id] > at:
                by_county[p.county_id].add(p.code)
        return by_county

    return missing


@slow
async def test_followups_go_only_to_contacts_still_missing_updates(demo: Demo) -> None:
    missing_at = await _missing_at(demo.out)
    engine = make_engine(f"sqlite+aiosqlite:///{demo.out / 'data' / 'qingshui.db'}")
    try:
        async with make_sessionmaker(engine)() as session:
            county_of = {p.telegram_id: p.county_id for p in await session.scalars(select(Person))}
    finally:
        await engine.dispose()
    contacts = {p["telegram_id"] for p in demo.timeline["people"] if p["role"] == "contact"}
    waves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in demo.of_kind("reminder") + demo.of_kind("followup"):
        waves[e["at"]].append(e)
    assert len(waves) >= 2, "the reminder and at least one follow-up"
    for at, wave in waves.items():
        missing = missing_at(dt.datetime.fromisoformat(at))
        expected = {c for c in contacts if missing.get(county_of[c])}
        assert {e["chat_id"] for e in wave} == expected, at
        for e in wave:
            listed = set(CODE.findall(" ".join(e["buttons"])))
            assert listed == missing[county_of[e["chat_id"]]], (at, e["name"])
    first, *later = sorted(waves)
    # some contacts reported after the reminder, so the follow-up went to fewer people
    assert len(waves[later[0]]) < len(waves[first])


@slow
def test_digests_go_out_on_mondays_with_a_chart_and_the_ledger(demo: Demo) -> None:
    readers = {p["telegram_id"] for p in demo.timeline["people"] if p["role"] in ("leader", "admin", "county_leader")}
    by_kind_day: dict[tuple[str, dt.date], set[int]] = defaultdict(set)
    for kind in ("digest", "chart", "ledger"):
        for e in demo.of_kind(kind):
            day = dt.datetime.fromisoformat(e["at"]).date()
            assert day in MONDAYS, e
            by_kind_day[(kind, day)].add(e["chat_id"])
            for name in e["files"]:
                data = (demo.out / name).read_bytes()
                if kind == "chart" and not name.endswith((".html", ".txt")):
                    assert data.startswith(b"\x89PNG"), name
                if kind == "ledger" and not name.endswith((".html", ".txt")):
                    assert name.endswith(".xlsx") and data.startswith(b"PK"), name
    for monday in MONDAYS:
        for kind in ("digest", "chart", "ledger"):
            assert by_kind_day[(kind, monday)] == readers, (kind, monday)
    # a city leader's digest names the rates
    city = [e for e in demo.of_kind("digest") if e["role"] == "leader" and e["step"] == "0"]
    assert city and all("完工率" in e["text"] and "开工率" in e["text"] for e in city)


@slow
def test_the_contacts_conversations_are_on_the_timeline(demo: Demo) -> None:
    said = [e for e in demo.timeline["entries"] if e["incoming"]]
    assert any(e["kind"] == "tap" and "JZ-012" in e["text"] for e in said)  # a reminder's button
    assert any(e["kind"] == "photo" for e in said)
    assert demo.timeline["reports"] >= 10
    replies = {e["chat_id"] for e in demo.of_kind("reply")}
    assert {e["chat_id"] for e in said} <= replies  # the bot answered everyone who wrote


def test_the_demo_clears_only_its_own_folder(tmp_path: Path) -> None:
    mine = tmp_path / "old-demo"
    mine.mkdir()
    (mine / MARKER).write_text("")
    (mine / "stale.html").write_text("old run")
    assert prepare_out(mine, "zh") == mine.resolve() and not (mine / "stale.html").exists()

    theirs = tmp_path / "photos"
    theirs.mkdir()
    (theirs / "keep.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(UserError, match="--out"):
        prepare_out(theirs, "zh")
    assert (theirs / "keep.jpg").exists()
