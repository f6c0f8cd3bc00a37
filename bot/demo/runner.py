"""The offline demo: the whole service on the sample ledger through one simulated month.

Everything is the real thing except Telegram and the clock:
- a fresh SQLite database under OUT/data (never the user's DATA_DIR database), migrated as usual, with
  the sample ledger imported as of 1 November 2026 and the people of bot.demo.story bound through
  the real invites (bot.services.people.create_invite + redeem);
- the fake Bot API (bot.demo.fake_telegram) on 127.0.0.1, recording every message, picture and file the
  bot sends into OUT/messages; the real application (bot.telegram.app.build_app: the Dispatcher with its
  middlewares and routers) polls it, and the simulated contacts write to it and press its buttons;
- the jobs run through bot.scheduler.run_job at every moment the scheduler's own triggers
  (bot.scheduler.job_triggers) fire in November, and the real Sender drains the outbox whenever a
  row is due, so quiet hours, follow-ups and escalation steps happen exactly as in the service;
- one simulated clock (UTC) is read by the handlers, the jobs and the sender alike; it only jumps
  forward, to the next moment something is due.

No BOT_TOKEN is read (a dummy token talks to the fake) and nothing leaves the machine.

This module sets the month up and reads its outcome; the month itself (the clock, the events, the
timeline) is bot/demo/simulation.py."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram, Rejection
from bot.demo.simulation import Entry, SimClock, Simulation, job_moments
from bot.demo.story import FIRST_DAY, LAST_DAY, Cast, cast
from bot.domain.periods import at_local
from bot.domain.rates import Totals
from bot.errors import UserError
from bot.ledger.io import import_sample
from bot.ledger.queries import city_figures
from bot.services.people import create_invite, redeem
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import County, Outbox, Report
from bot.texts import render

DEMO_TOKEN = "123456:DEMO"  # the fake accepts any token; BOT_TOKEN is never read
MARKER = ".qingshui-demo"  # marks a folder the demo made, so a second run may clear it
_SEQ = re.compile(r"^(\d+)_")


@dataclass
class DemoResult:
    out: Path
    index: Path
    people: list[Cast]
    entries: list[Entry]
    before: Totals
    after: Totals
    reports: int
    reporters: int
    rejected: list[Rejection]
    undelivered: list[str]  # outbox rows not sent by the end: "key: reason"
    errors: list[str]  # ERROR log lines (a handler or job failed)
    seconds: float
    loose: list[str]  # files in OUT/messages that belong to no timeline entry (the fake's own index page)

    def counts(self) -> Counter[str]:
        """Messages the bot sent, per kind; alerts also per step (alert:1 … alert:red)."""
        counted: Counter[str] = Counter()
        for e in self.entries:
            if e.incoming:
                continue
            counted[e.kind] += 1
            if e.kind == "alert":
                counted[f"alert:{e.step}"] += 1
            if e.kind == "digest" and e.step == "0":
                counted["digest:readers"] += 1
        return counted

    @property
    def ok(self) -> bool:
        return not (self.rejected or self.undelivered or self.errors)


def prepare_out(out: Path, lang: str) -> Path:
    """Clear `out` for a new run (returned resolved); refuse a non-empty folder the demo did not make."""
    out = out.resolve()
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise UserError(render(lang, "cli_demo.not_demo_folder", path=str(out)))
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by `qingshui demo`; cleared by its next run\n", encoding="utf-8")
    return out


def demo_settings(settings: Settings, out: Path, api_url: str) -> Settings:
    """The user's settings (language, time zone, cycle, thresholds, quiet hours) on the demo's own
    database and files, talking to the fake Bot API; the fake sets no limits, so the sender is not paced."""
    data_dir = (out / "data").resolve()
    return settings.model_copy(update={
        "bot_token": SecretStr(DEMO_TOKEN),
        "bot_username": None,
        "telegram_api_url": api_url,
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'qingshui.db'}",
        "redis_url": None,
        "webhook_url": None,
        "webhook_secret": None,
        "admin_ids": (),
        "data_dir": data_dir,
        "send_rate_global": 1000.0,
        "send_rate_per_chat": 1000.0,
        "send_rate_per_group_minute": 1000.0,
    })


class _ErrorLog(logging.Handler):
    """Collects ERROR lines logged while the demo runs: any of them makes the run fail."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


async def enrol(sessionmaker: async_sessionmaker[AsyncSession], people: list[Cast], now: dt.datetime,
                lang: str) -> None:
    """Bind everyone as the service does: an invite per person, redeemed by their Telegram id."""
    async with sessionmaker() as session:
        counties = {c.name: c for c in await session.scalars(select(County))}
        for person in people:
            county = counties[person.county] if person.county else None
            code, _ = await create_invite(session, role=person.role, county=county, name=person.name,
                                          ttl=dt.timedelta(days=7), now=now)
            await redeem(session, code, telegram_id=person.telegram_id, telegram_name=person.name, language=lang,
                         now=now)


def attach_files(entries: list[Entry], messages_dir: Path) -> list[str]:
    """Give each sent entry its files in OUT/messages (named after the fake's record number); returns the
    files no entry claims (the fake's own index page)."""
    by_seq: dict[int, list[str]] = {}
    loose: list[str] = []
    for path in sorted(messages_dir.iterdir()) if messages_dir.is_dir() else []:
        match = _SEQ.match(path.name)
        if match:
            by_seq.setdefault(int(match.group(1)), []).append(path.name)
        else:
            loose.append(path.name)
    claimed: set[int] = set()
    for e in entries:
        if e.seq is not None and e.seq in by_seq:
            e.files = by_seq[e.seq]
            claimed.add(e.seq)
    loose += [name for seq, names in sorted(by_seq.items()) if seq not in claimed for name in names]
    return loose


async def _rates(sessionmaker: async_sessionmaker[AsyncSession]) -> Totals:
    async with sessionmaker() as session:
        return await city_figures(session)


async def _outcome(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, int, list[str]]:
    """Reports saved, people who reported, and outbox rows that were not sent."""
    async with sessionmaker() as session:
        counting = Report.kind.in_(("progress", "no_change"))
        reports = await session.scalar(select(func.count(Report.id)).where(counting)) or 0
        reporters = await session.scalar(select(func.count(func.distinct(Report.person_id))).where(counting)) or 0
        unsent = await session.execute(select(Outbox.key, Outbox.state, Outbox.last_error)
                                       .where(Outbox.state != "sent").order_by(Outbox.id))
        undelivered = [f"{key}: {state} {error}".strip() for key, state, error in unsent]
    return int(reports), int(reporters), undelivered


async def run_demo(settings: Settings, out: Path) -> DemoResult:
    """Simulate November 2026 into `out` (cleared first) and say what happened; bot.demo.output writes
    the index page from the result."""
    started = time.monotonic()
    lang = settings.default_language
    out = prepare_out(out, lang)
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        async with FakeTelegram(record_dir=out / "messages") as fake:
            demo = demo_settings(settings, out, fake.base_url)
            people = cast()
            for person in people:
                fake.user(person.telegram_id, person.name, language_code="zh-hans" if lang == "zh" else "en")
            tz = demo.tz
            start = at_local(FIRST_DAY, dt.time(0, 0), tz)
            end = at_local(LAST_DAY + dt.timedelta(days=1), dt.time(0, 0), tz)
            await migrate(demo.db_url)
            engine = make_engine(demo.db_url)
            try:
                sessionmaker = make_sessionmaker(engine)
                clock = SimClock(start)
                await import_sample(sessionmaker, now=start, tz=tz)
                await enrol(sessionmaker, people, start, lang)
                before = await _rates(sessionmaker)
                simulation = Simulation(demo, sessionmaker, fake, clock)
                await simulation.run(start, end)
                after = await _rates(sessionmaker)
                reports, reporters, undelivered = await _outcome(sessionmaker)
            finally:
                await engine.dispose()
            rejected = list(fake.rejected)
    finally:
        logging.getLogger().removeHandler(errors)
    entries = sorted(simulation.entries, key=lambda e: (e.at, e.seq if e.seq is not None else -1))
    loose = attach_files(entries, out / "messages")
    return DemoResult(out=out, index=out / "index.html", people=people, entries=entries, before=before,
                      after=after, reports=reports, reporters=reporters, rejected=rejected, undelivered=undelivered,
                      errors=errors.lines, seconds=time.monotonic() - started, loose=loose)


__all__ = ["DemoResult", "Entry", "SimClock", "demo_settings", "job_moments", "prepare_out", "run_demo"]
