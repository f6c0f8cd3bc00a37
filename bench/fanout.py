"""Fan-out: 1,000 county contacts get this month's reminder (queued by the real reminders job) through
the real sender, against the fake Bot API enforcing the same limits the sender is configured for
(SEND_RATE_GLOBAL messages per second overall, SEND_RATE_PER_CHAT per chat). Then the same with two
sender processes sharing the outbox. Temporary SQLite file; PostgreSQL too with --postgres.

    .venv/bin/python bench/fanout.py [--recipients 1000] [--rate 25] [--postgres [URL]]

Targets: achieved rate at least 95 % of the configured one, no 429 at all, every message exactly once.
The rate is measured at the fake server, from the first message's arrival to the last's:
(messages - 1) / span; "peak 1 s" is the most messages the server saw in any one-second window.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench._common import PG_DEFAULT, pg_answers, pg_database
from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import County, Outbox, Person, Project
from bot.telegram.sender import Sender
from jobs.base import JobContext
from jobs.registry import run_job

SH = ZoneInfo("Asia/Shanghai")
REMINDER_MOMENT = dt.datetime(2026, 5, 20, 9, 30, tzinfo=SH).astimezone(dt.UTC)
COUNTIES = ("榆次区", "太谷区", "祁县", "平遥县", "介休市", "灵石县", "寿阳县", "昔阳县", "和顺县", "左权县", "榆社县")
TOKEN = "123456:BENCH"
FIRST_USER = 100_000


def bench_settings(db_url: str, data_dir: Path, rate: float) -> Settings:
    return Settings(
        database_url=db_url, data_dir=data_dir, bot_token=TOKEN, quiet_hours="",  # type: ignore[arg-type]
        send_rate_global=rate, send_rate_per_chat=1, _env_file=None,  # type: ignore[call-arg]
    )


def simulated_clock() -> Callable[[], dt.datetime]:
    """The reminder moment plus real elapsed time: claims and backoffs behave as in production."""
    start = time.monotonic()
    return lambda: REMINDER_MOMENT + dt.timedelta(seconds=time.monotonic() - start)


async def build(maker: async_sessionmaker[AsyncSession], recipients: int) -> None:
    """11 counties with 4 projects each and `recipients` bound contacts spread over them."""
    async with maker() as s:
        await s.execute(insert(County), [{"name": n, "sort_order": i} for i, n in enumerate(COUNTIES)])
        counties = list(await s.scalars(select(County.id).order_by(County.id)))
        await s.execute(insert(Project), [
            {"code": f"JZ-{c * 4 + k + 1:03d}", "name": f"{COUNTIES[c]}生态工程{k + 1}", "county_id": county_id,
             "status": "started", "progress": 40, "planned_start": dt.date(2026, 1, 1),
             "planned_finish": dt.date(2026, 12, 31)}
            for c, county_id in enumerate(counties) for k in range(4)
        ])
        await s.execute(insert(Person), [
            {"telegram_id": FIRST_USER + i, "name": f"联络员{i:04d}", "role": "contact",
             "county_id": counties[i % len(counties)], "language": "zh" if i % 5 else "en"}
            for i in range(recipients)
        ])
        await s.commit()


async def queue_reminders(maker: async_sessionmaker[AsyncSession], settings: Settings) -> tuple[int, float]:
    started = time.perf_counter()
    async with maker() as s:
        result = await run_job(s, "reminders", REMINDER_MOMENT, JobContext.from_settings(settings))
    return result.queued, time.perf_counter() - started


async def reset_outbox(maker: async_sessionmaker[AsyncSession]) -> None:
    async with maker() as s:
        await s.execute(update(Outbox).values(state="pending", attempts=0, claimed_by=None, claimed_until=None,
                                              sent_at=None, message_id=None, last_error=""))
        await s.execute(text("DELETE FROM leases"))
        await s.commit()


def make_bot(base_url: str) -> Bot:
    return Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))


async def outbox_left(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker() as s:
        query = select(func.count()).select_from(Outbox).where(Outbox.state.in_(("pending", "sending")))
        return int(await s.scalar(query) or 0)


async def drain_all(sender: Sender, maker: async_sessionmaker[AsyncSession]) -> int:
    """Drain until the whole outbox is done (another sender may hold the last rows for a while)."""
    sent = 0
    while True:
        sent += await sender.drain_once()
        if not await outbox_left(maker):
            return sent
        await asyncio.sleep(0.2)


@dataclass
class Row:
    backend: str
    senders: int
    queued: int
    delivered: int
    once: bool
    span: float
    rate: float
    configured: float
    peak: int
    too_many: int
    per_sender: str

    def cells(self) -> list[str]:
        return [self.backend, str(self.senders), str(self.queued), str(self.delivered), "yes" if self.once else "NO",
                f"{self.span:.1f}", f"{self.rate:.1f}", f"{100 * self.rate / self.configured:.0f} %",
                str(self.peak), str(self.too_many), self.per_sender]


HEADERS = ["backend", "senders", "queued", "delivered", "each once", "span s", "rate/s", "of configured",
           "peak 1 s", "429s", "sent per sender"]


def peak_per_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def measure(
    backend: str, maker: async_sessionmaker[AsyncSession], fake: FakeTelegram, queued: int, senders: int,
    rate: float,
) -> Row:
    messages = [r for r in fake.sent if r.is_message]
    times = sorted(r.time for r in messages)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_chat = Counter(r.chat_id for r in messages)
    async with maker() as s:
        by_sender = Counter(await s.scalars(select(Outbox.claimed_by).where(Outbox.state == "sent")))
    return Row(
        backend=backend, senders=senders, queued=queued, delivered=len(messages),
        once=len(per_chat) == queued and set(per_chat.values()) == {1},
        span=span, rate=(len(times) - 1) / span if span else 0.0, configured=rate, peak=peak_per_second(times),
        too_many=fake.counters["rate_limited"] + fake.counters["injected_429"],
        per_sender=" / ".join(str(n) for _, n in sorted(by_sender.items())),
    )


def limited_fake(rate: float, recipients: int) -> FakeTelegram:
    fake = FakeTelegram(token=TOKEN)
    fake.set_rate_limits(per_chat_per_second=1, global_per_second=int(rate))
    for i in range(recipients):
        fake.user(FIRST_USER + i, first_name=f"联络员{i:04d}")
    return fake


async def one_sender(backend: str, db_url: str, data_dir: Path, rate: float, recipients: int, queued: int) -> Row:
    settings = bench_settings(db_url, data_dir, rate)
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    fake = limited_fake(rate, recipients)
    try:
        async with fake:
            bot = make_bot(fake.base_url)
            try:
                await drain_all(Sender(bot, maker, settings, clock=simulated_clock(), name="sender-1"), maker)
            finally:
                await bot.session.close()
            return await measure(backend, maker, fake, queued, 1, rate)
    finally:
        await engine.dispose()


async def two_senders(backend: str, db_url: str, data_dir: Path, rate: float, recipients: int, queued: int) -> Row:
    """Two sender processes (separate interpreters and connections) against one fake server."""
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    await reset_outbox(maker)
    fake = limited_fake(rate, recipients)
    try:
        async with fake:
            workers = [
                await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--worker", "--db", db_url, "--api", fake.base_url,
                    "--rate", str(rate), "--name", f"sender-{n}", "--data-dir", str(data_dir),
                    stdout=subprocess.DEVNULL,
                )
                for n in (1, 2)
            ]
            codes = await asyncio.gather(*(w.wait() for w in workers))
            if any(codes):
                raise SystemExit(f"a sender process failed: exit codes {codes}")
            return await measure(backend, maker, fake, queued, 2, rate)
    finally:
        await engine.dispose()


async def worker(args: argparse.Namespace) -> None:
    settings = bench_settings(args.db, Path(args.data_dir), args.rate)
    engine = make_engine(args.db)
    maker = make_sessionmaker(engine)
    bot = make_bot(args.api)
    try:
        sent = await drain_all(Sender(bot, maker, settings, clock=simulated_clock(), name=args.name), maker)
        print(f"{args.name}: {sent}")
    finally:
        await bot.session.close()
        await engine.dispose()


async def run_backend(backend: str, db_url: str, data_dir: Path, rate: float, recipients: int) -> list[Row]:
    await migrate(db_url)
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    try:
        await build(maker, recipients)
        queued, seconds = await queue_reminders(maker, bench_settings(db_url, data_dir, rate))
    finally:
        await engine.dispose()
    print(f"{backend}: reminders job queued {queued} messages in {seconds:.2f} s", flush=True)
    rows = [await one_sender(backend, db_url, data_dir, rate, recipients, queued)]
    print(f"{backend}: one sender done", flush=True)
    rows.append(await two_senders(backend, db_url, data_dir, rate, recipients, queued))
    print(f"{backend}: two senders done", flush=True)
    return rows


def print_table(rows: list[Row]) -> None:
    table = [HEADERS, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    for n, line in enumerate(table):
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


async def main_async(args: argparse.Namespace) -> None:
    print(f"{args.recipients} recipients, one reminder each; fake Bot API limits: {int(args.rate)}/s overall, "
          f"1/s per chat; sender configured SEND_RATE_GLOBAL={args.rate:g}", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="qs_fanout_") as tmp:
        data_dir = Path(tmp)
        sqlite_url = f"sqlite+aiosqlite:///{data_dir / 'fanout.db'}"
        rows += await run_backend("sqlite", sqlite_url, data_dir, args.rate, args.recipients)
        if args.postgres:
            if pg_answers(args.postgres):
                async with pg_database(args.postgres) as url:
                    rows += await run_backend("postgresql", url, data_dir, args.rate, args.recipients)
            else:
                print("PostgreSQL: does not answer, skipped")
    print()
    print_table(rows)
    failed = [r for r in rows if not r.once or r.too_many or r.rate < 0.95 * r.configured]
    print()
    print("targets (≥ 95 % of the configured rate, 0 × 429, each message once):",
          "met" if not failed else f"MISSED in {len(failed)} run(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="SEND_RATE_GLOBAL, enforced by the fake as well")
    parser.add_argument("--postgres", nargs="?", const=PG_DEFAULT, default=None,
                        help=f"also on PostgreSQL (an admin URL; a database is made and dropped; default {PG_DEFAULT})")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(worker(args) if args.worker else main_async(args))


if __name__ == "__main__":
    main()
