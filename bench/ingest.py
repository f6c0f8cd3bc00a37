"""Ingest: one-message reports (`BX-00017 81% 管网铺设完成`) fed as real aiogram Update objects through the
real Dispatcher (bot.telegram.app.build_dispatcher: throttle, session, dedupe, identity, access middlewares,
FSM storage in the database, the quick-report router, the project card as the answer), against the
bare floor of the same writes done directly in the same run. SQLite (temporary file) and PostgreSQL
when it answers.

    .venv/bin/python bench/ingest.py [--reports 400] [--projects 2000] [--bot http|record] [--concurrency 1,8]
                                     [--no-postgres] [--profile]

- dispatcher: `await dp.feed_update(bot, update)`, one update after another (or N at once with
  --concurrency N, as polling hands each update to its own task). The Bot either talks real HTTP to the
  fake Bot API (bot/fake_telegram, run in a process of its own as Telegram would be: `--bot http`, the
  default) or has a session that records each call and answers with a made-up Message (`--bot record`).
- floor: per report a fresh session, the project and the person read (`session.get`, one SELECT), and
  the same inserts as the dispatcher's, in one commit: bot.services.reports.save_report (the Report row, the ledger
  update, the Change rows) and the update's processed_updates row (what makes a redelivered update a
  no-op): the work a report cannot do without. Run the same way (one at a time, or N at once).

Both run on the same ledger (bench/digest.py's builder: counties, contacts, projects with milestones
and a few months of reports), on disjoint sets of started projects, alternating in batches so that
load from elsewhere on the machine falls on both alike. Target: dispatcher ≥ 70 % of the floor.
The throttle is raised (THROTTLE_PER_MINUTE) because eleven contacts send everything: one real contact
never reports hundreds of projects a minute, and a dropped update would not be a report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, Update
from sqlalchemy import String, cast, func, select, update

from bench._common import PG_DEFAULT, Figure, catch_up_sequences, pg_answers, pg_database, print_figures
from bench.digest import NOW, SH, build
from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram
from bot.services.reports import ReportInput, save_report
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import Milestone, Person, ProcessedUpdate, Project, Report
from bot.telegram.app import build_bot, build_dispatcher

TOKEN = "123456:BENCH"
TARGET = 0.70
BATCH = 10  # alternate often: load from elsewhere on the machine falls on both sides alike
NOTE = "管网铺设完成"


class RecordingSession(BaseSession):
    """A Bot session without network: remembers each call and answers a send with a plausible Message."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self._message_id = 0

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None) -> Any:  # noqa: ASYNC109
        self.calls.append(type(method).__name__)
        chat_id = getattr(method, "chat_id", None)
        if chat_id is None:
            return True
        self._message_id += 1
        return Message(message_id=self._message_id, date=NOW, chat=Chat(id=int(chat_id), type="private"),
                       text=getattr(method, "text", None))

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never downloads
        raise NotImplementedError

    async def close(self) -> None:
        return None


@dataclass
class Side:
    """One way of ingesting: how many reports, in how many seconds."""

    reports: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.reports / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    backend: str
    bot: str
    concurrency: int
    floor: Side
    dispatcher: Side
    saved: int
    replies: int

    @property
    def ratio(self) -> float:
        return self.dispatcher.rate / self.floor.rate if self.floor.rate else 0.0


def bench_settings(db_url: str, data_dir: Path, api_url: str | None) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=db_url, data_dir=data_dir, bot_token=TOKEN, telegram_api_url=api_url,  # type: ignore[arg-type]
        quiet_hours="", throttle_per_minute=1_000_000, _env_file=None,
    )


async def name_milestones_apart(maker: Any) -> None:
    """Real ledgers name each project's milestones its own way (管网铺设, 泵站建设 …); the builder gives
    every project the same two. Make them differ, so the parser sees as many names as a real ledger."""
    async with maker() as s:
        own_name = Milestone.name + "（" + cast(Milestone.project_id, String) + "）"
        await s.execute(update(Milestone).values(name=own_name))
        await s.commit()


async def targets(maker: Any, count: int) -> list[tuple[int, str, int, int]]:
    """(project id, code, contact's Telegram id, new progress) for `count` started projects, each moving on."""
    async with maker() as s:
        contacts = {cid: tid for cid, tid in await s.execute(
            select(Person.county_id, Person.telegram_id).where(Person.role == "contact"))}
        rows = list(await s.execute(
            select(Project.id, Project.code, Project.county_id, Project.progress)
            .where(Project.status == "started", Project.progress < 95).order_by(Project.id).limit(count)))
    if len(rows) < count:
        raise SystemExit(f"the ledger has only {len(rows)} started projects below 95 %: use more --projects")
    return [(pid, code, contacts[cid], progress + 1) for pid, code, cid, progress in rows]


class FakeProcess:
    """The fake Bot API in a process of its own, as Telegram is: its work is not counted as ours."""

    def __init__(self, users: list[int]) -> None:
        self.users = users
        self.base_url = ""
        self.sent = 0
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> FakeProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve-fake", ",".join(map(str, self.users)),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self._process.stdout is not None
        self.base_url = (await self._process.stdout.readline()).decode().strip()
        if not self.base_url.startswith("http"):
            raise SystemExit("the fake Bot API did not start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._process is not None and self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        line = (await self._process.stdout.readline()).decode().strip()
        self.sent = int(line) if line.isdigit() else -1
        await self._process.wait()


async def serve_fake(users: str) -> None:
    """--serve-fake: run the fake Bot API until standard input closes, then print how many messages it took."""
    async with FakeTelegram(token=TOKEN) as fake:
        for telegram_id in (int(u) for u in users.split(",") if u):
            fake.user(telegram_id, first_name=f"联络员{telegram_id}")
        print(fake.base_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(sum(1 for r in fake.sent if r.is_message), flush=True)


def make_update(bot: Bot, telegram_id: int, text: str, update_id: int) -> Update:
    """What Telegram would deliver for `text` written by `telegram_id` in the private chat."""
    user = {"id": telegram_id, "is_bot": False, "first_name": f"联络员{telegram_id}", "language_code": "zh-hans"}
    raw = {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(NOW.timestamp()), "text": text, "from": user,
        "chat": {"id": telegram_id, "type": "private", "first_name": user["first_name"]}}}
    return Update.model_validate(raw, context={"bot": bot})


async def run_backend(backend: str, db_url: str, data_dir: Path, reports: int, projects: int, bot_kind: str,
                      concurrency: int = 1, profile: bool = False) -> Result:
    await migrate(db_url)
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    try:
        await build(maker, projects, 6)
        await catch_up_sequences(maker)
        await name_milestones_apart(maker)
        chosen = await targets(maker, 2 * reports + 2)
        (warm_floor, warm_dispatch), chosen = chosen[-2:], chosen[:-2]
        floor_set, dispatch_set = chosen[0::2], chosen[1::2]
        async with contextlib.AsyncExitStack() as stack:
            if bot_kind == "http":
                contacts = sorted({telegram_id for _, _, telegram_id, _ in [*chosen, warm_dispatch]})
                fake = await stack.enter_async_context(FakeProcess(contacts))
            settings = bench_settings(db_url, data_dir, fake.base_url if bot_kind == "http" else None)
            if bot_kind == "http":
                bot = build_bot(settings)  # the service's own Bot, on TELEGRAM_API_URL
            else:
                bot = Bot(TOKEN, session=RecordingSession(), default=DefaultBotProperties(parse_mode=ParseMode.HTML))
            stack.push_async_callback(bot.session.close)
            session = bot.session
            dp, _ = build_dispatcher(settings, maker, clock=lambda: NOW)

            async def floor_one(target: tuple[int, str, int, int], update_id: int) -> None:
                pid, _, telegram_id, progress = target
                async with maker() as s:
                    project = await s.get_one(Project, pid)
                    person_id = await s.scalar(select(Person.id).where(Person.telegram_id == telegram_id))
                    s.add(ProcessedUpdate(update_id=update_id, at=NOW))  # the report's update, applied once
                    await save_report(s, project, ReportInput(progress=progress, text=NOTE), person_id=person_id,
                                      now=NOW, tz=SH, update_id=update_id)

            def update_of(target: tuple[int, str, int, int], update_id: int) -> Update:
                _, code, telegram_id, progress = target
                return make_update(bot, telegram_id, f"{code} {progress}% {NOTE}", update_id)

            async def at_once(steps: list[Awaitable[Any]]) -> None:
                for first in range(0, len(steps), concurrency):  # as polling does: a task per update
                    await asyncio.gather(*steps[first:first + concurrency])

            # warm up both paths (imports, template compilation, connection pool) on two more projects
            await floor_one(warm_floor, 9_000_000)
            await dp.feed_update(bot, update_of(warm_dispatch, 9_000_001))

            profiler = _profiler() if profile else None
            floor, dispatcher = Side(), Side()
            for start in range(0, reports, BATCH):
                batch = range(start, min(start + BATCH, reports))
                began = time.perf_counter()
                await at_once([floor_one(floor_set[n], 1_000_000 + n) for n in batch])
                floor.seconds += time.perf_counter() - began
                floor.reports += len(batch)

                updates = [update_of(dispatch_set[n], 2_000_000 + n) for n in batch]
                if profiler is not None:
                    profiler.start()
                began = time.perf_counter()
                await at_once([dp.feed_update(bot, u) for u in updates])
                dispatcher.seconds += time.perf_counter() - began
                if profiler is not None:
                    profiler.stop()
                dispatcher.reports += len(batch)
            if profiler is not None:
                print(profiler.output_text(unicode=True, show_all=bool(os.environ.get("PROFILE_ALL"))))
            replies = session.calls.count("SendMessage") if isinstance(session, RecordingSession) else 0
        if bot_kind == "http":
            replies = fake.sent
        async with maker() as s:
            ids = [pid for pid, *_ in dispatch_set]
            saved = int(await s.scalar(select(func.count()).select_from(Report).where(
                Report.project_id.in_(ids), Report.created_at == NOW, Report.update_id.is_not(None))) or 0)
        return Result(backend, bot_kind, concurrency, floor, dispatcher, saved, replies)
    finally:
        await engine.dispose()


def _profiler() -> Any:
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: .venv/bin/pip install pyinstrument") from None
    return Profiler(async_mode="disabled")


def report(results: list[Result]) -> list[Figure]:
    print(f"{'backend':<11} {'bot':<7} {'at once':>7} {'floor/s':>8} {'dispatcher/s':>13} {'ratio':>6} "
          f"{'saved':>6} {'replies':>8}")
    for r in results:
        print(f"{r.backend:<11} {r.bot:<7} {r.concurrency:>7} {r.floor.rate:>8.0f} {r.dispatcher.rate:>13.0f} "
              f"{r.ratio:>6.2f} {r.saved:>6} {r.replies:>8}")
    figures = []
    for r in results:
        how = "one at a time" if r.concurrency == 1 else f"{r.concurrency} at once"
        figures.append(Figure(f"ingest {r.backend}, {how}: dispatcher / floor", round(100 * r.ratio, 1),
                              100 * TARGET, "%", higher_is_better=True))
    print()
    print_figures(figures)
    return figures


async def measure(reports: int = 400, projects: int = 2000, bot_kind: str = "http",
                  postgres: str | None = PG_DEFAULT, concurrency: tuple[int, ...] = (1,),
                  profile: bool = False) -> list[Figure]:
    """Run on SQLite and (when it answers) PostgreSQL, once per concurrency; print the table; return the figures."""
    results = []
    with tempfile.TemporaryDirectory(prefix="qs_ingest_") as tmp:
        data_dir = Path(tmp)
        print(f"{reports} one-message reports each way, ledger of {projects} projects; bot: {bot_kind}", flush=True)
        for n, at_once in enumerate(concurrency):
            url = f"sqlite+aiosqlite:///{data_dir / f'ingest{n}.db'}"
            results.append(await run_backend("SQLite", url, data_dir, reports, projects, bot_kind, at_once, profile))
        if postgres and pg_answers(postgres):
            for at_once in concurrency:
                async with pg_database(postgres) as url:
                    results.append(await run_backend("PostgreSQL", url, data_dir, reports, projects, bot_kind,
                                                     at_once, profile))
        elif postgres:
            print(f"PostgreSQL at {postgres}: does not answer, skipped")
    for r in results:
        if r.saved != r.dispatcher.reports:
            raise SystemExit(f"{r.backend}: {r.dispatcher.reports} reports sent, {r.saved} saved")
    return report(results)


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=400, help="reports each way (dispatcher and floor)")
    parser.add_argument("--projects", type=int, default=2000, help="ledger size (needs 2 × reports started)")
    parser.add_argument("--bot", choices=("http", "record"), default="http",
                        help="http: replies go to the fake Bot API over HTTP; record: no network")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="an admin URL on the server (a database is made)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--concurrency", default="1",
                        help="updates handled at once, comma-separated runs (polling hands each update to a task)")
    parser.add_argument("--profile", action="store_true",
                        help="print where the dispatcher's time goes (pyinstrument; PROFILE_ALL=1: every frame)")
    parser.add_argument("--serve-fake", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake is not None:
        asyncio.run(serve_fake(args.serve_fake))
        return []
    return asyncio.run(measure(args.reports, args.projects, args.bot, None if args.no_postgres else args.postgres,
                               tuple(int(n) for n in args.concurrency.split(",")), args.profile))


if __name__ == "__main__":
    main()
