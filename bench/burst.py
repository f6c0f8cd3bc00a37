"""Burst: the monthly crowd right after a reminder wave. K contacts each send a one-message report,
`/list` and `/project CODE` twice, all 4·K updates spread over one second, to the real service
(`python -m bot run`, long polling, its own process, DB_POOL_SIZE as configured) through the fake Bot
API (bot/fake_telegram, in this process) holding it to Telegram's limits: 30 messages a second overall,
one a second per chat, 429 with retry_after past them.

    .venv/bin/python bench/burst.py [--contacts 50,200] [--no-postgres]

Figures per database and K: answers delivered and lost (each update expects exactly one answer), 429s
met, the service's handler failures and pool timeouts (from its log), and per contact the time from
their first message to their first answer and to their last (p50, p95, max). The floor of the last
answer is what the service's own pace allows: three answers after the first at SEND_RATE_PER_CHAT
(1/s), or all 4·K answers at SEND_RATE_GLOBAL (25/s), whichever is longer.

Targets (issue 9): every answer delivered, 0 lost, 0 pool timeouts, first-answer p95 ≤ 2 s at K = 50,
the last answer no later than its floor + 5 s. The scheduler lease is held by a stand-in during the run,
so the jobs' catch-up notifications do not mix with the answers (the sender shares the pace with them).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from bench._common import PG_DEFAULT, Figure, pg_answers, pg_database, print_figures
from bot.config import Settings
from bot.demo.fake_telegram import BOT_ID, FakeTelegram
from bot.domain.clock import utcnow
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.lease import SCHEDULER_LEASE
from bot.store.models import County, Lease, Person, Project

TOKEN = f"{BOT_ID}:BURST"
COUNTIES = ("榆次区", "太谷区", "祁县", "平遥县", "介休市", "灵石县", "寿阳县", "昔阳县", "和顺县", "左权县", "榆社县")
FIRST_USER = 300_000
PER_CONTACT = 4  # a report, /list, /project, /project
START_TIMEOUT = 60.0


def code_of(n: int) -> str:
    return f"BU-{n:04d}"


def messages_of(n: int) -> list[str]:
    return [f"{code_of(n)} 60% 管网铺设过半", "/list", f"/project {code_of(n)}", f"/project {code_of(n)}"]


async def prepare(url: str, contacts: int) -> None:
    """The counties, one started project and one bound contact each, and the scheduler lease held."""
    await migrate(url)
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as s:
        counties = [County(name=name, sort_order=i) for i, name in enumerate(COUNTIES, 1)]
        s.add_all(counties)
        await s.flush()
        for n in range(contacts):
            county = counties[n % len(counties)]
            s.add(Project(code=code_of(n), name=f"{county.name}第{n}号雨污分流改造工程", county_id=county.id,
                          category="雨污分流改造", unit="住建局", planned_start=dt.date(2026, 1, 1),
                          planned_finish=dt.date(2027, 12, 31), status="started", progress=30,
                          actual_start=dt.date(2026, 1, 10)))
            s.add(Person(telegram_id=FIRST_USER + n, name=f"联络员{n}", role="contact", county_id=county.id,
                         language="zh"))
        s.add(Lease(name=SCHEDULER_LEASE, holder="bench stand-in", expires_at=utcnow() + dt.timedelta(days=1)))
        await s.commit()
    await engine.dispose()


@dataclass
class Result:
    backend: str
    contacts: int
    expected: int = 0
    answered: int = 0
    rate_limited: int = 0
    failures: int = 0
    pool_timeouts: int = 0
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    floor: float = 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.answered


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def start_service(fake: FakeTelegram, url: str, data_dir: Path) -> tuple[asyncio.subprocess.Process, Path]:
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.base_url, "DATABASE_URL": url,
           "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", "DEFAULT_LANGUAGE": "zh"}
    log_path = data_dir / "run.log"
    with log_path.open("w") as log:
        child = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=data_dir, env=env,
                                                     stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while not fake.method_calls["getUpdates"]:
        if child.returncode is not None or time.monotonic() - started > START_TIMEOUT:
            raise SystemExit(f"`bot run` did not start polling:\n{log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the command menu and the first poll settle before the crowd comes
    return child, log_path


async def stop_service(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), 40)
        except TimeoutError:
            child.kill()
            await child.wait()


async def run_burst(backend: str, url: str, contacts: int, data_dir: Path) -> Result:
    await prepare(url, contacts)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    result = Result(backend, contacts, expected=contacts * PER_CONTACT)
    async with FakeTelegram(token=TOKEN) as fake:
        fake.set_rate_limits(per_chat_per_second=1, global_per_second=30)
        users = [FIRST_USER + n for n in range(contacts)]
        for n, user in enumerate(users):
            fake.user(user, f"联络员{n}", language_code="zh-hans")
        child, log_path = await start_service(fake, url, data_dir)
        try:
            start = len(fake.sent)
            updates = [(n, text) for step in range(PER_CONTACT) for n in range(contacts)
                       for text in (messages_of(n)[step],)]
            first_sent: dict[int, float] = {}
            began = time.monotonic()
            for i, (n, text) in enumerate(updates):  # spread over one second
                delay = began + i / len(updates) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                fake.send_text(users[n], text)
                first_sent.setdefault(users[n], time.time())
            result.floor = max((PER_CONTACT - 1) / settings.send_rate_per_chat,
                               result.expected / settings.send_rate_global)
            deadline = time.monotonic() + result.floor + 60

            def answers() -> dict[int, list[float]]:
                got: dict[int, list[float]] = {u: [] for u in users}
                for r in fake.sent[start:]:
                    if r.is_message and r.chat_id in got:
                        got[r.chat_id].append(r.time)
                return got

            while time.monotonic() < deadline:
                if sum(len(times) for times in answers().values()) >= result.expected:
                    break
                await asyncio.sleep(0.2)
            await fake.wait_idle(quiet=2.0, timeout=60)
            got = answers()
            result.answered = sum(min(len(times), PER_CONTACT) for times in got.values())
            result.rate_limited = fake.counters["rate_limited"]
            for user, times in got.items():
                if times:
                    result.first.append(times[0] - first_sent[user])
                    result.last.append(times[-1] - first_sent[user])
        finally:
            await stop_service(child)
        log = log_path.read_text()
        result.failures = log.count(" failed: ")
        result.pool_timeouts = log.count("QueuePool limit")
    return result


def figures(results: list[Result]) -> list[Figure]:
    out: list[Figure] = []
    for r in results:
        tag = f"burst {r.backend} K={r.contacts}"
        print(f"{tag}: {r.answered}/{r.expected} answered, {r.lost} lost, {r.rate_limited} × 429 met, "
              f"{r.failures} handler failures, {r.pool_timeouts} pool timeouts")
        print(f"  first answer p50 {pct(r.first, 0.5):.2f} s · p95 {pct(r.first, 0.95):.2f} s · "
              f"max {max(r.first, default=float('nan')):.2f} s")
        print(f"  last answer  p50 {pct(r.last, 0.5):.2f} s · p95 {pct(r.last, 0.95):.2f} s · "
              f"max {max(r.last, default=float('nan')):.2f} s (floor {r.floor:.1f} s)")
        out.append(Figure(f"{tag} answers lost", r.lost, 0, "answers"))
        out.append(Figure(f"{tag} pool timeouts", r.pool_timeouts, 0, "errors"))
        if r.contacts <= 50:
            out.append(Figure(f"{tag} first answer p95", pct(r.first, 0.95), 2.0, "s"))
        out.append(Figure(f"{tag} last answer max", max(r.last, default=float("inf")), r.floor + 5, "s"))
    return out


async def measure(contacts: tuple[int, ...] = (50, 200), postgres: bool = True) -> list[Figure]:
    results: list[Result] = []
    for k in contacts:
        with tempfile.TemporaryDirectory(prefix="qingshui-burst-") as tmp:
            data_dir = Path(tmp)
            results.append(await run_burst("SQLite", f"sqlite+aiosqlite:///{data_dir / 'qingshui.db'}", k, data_dir))
        if postgres and pg_answers(PG_DEFAULT):
            with tempfile.TemporaryDirectory(prefix="qingshui-burst-") as tmp:
                async with pg_database(PG_DEFAULT) as url:
                    results.append(await run_burst("PostgreSQL", url, k, Path(tmp)))
    return figures(results)


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", default="50,200", help="comma-separated K values")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    contacts = tuple(int(k) for k in args.contacts.split(","))
    found = asyncio.run(measure(contacts, postgres=not args.no_postgres))
    print_figures(found, "burst")
    return found


if __name__ == "__main__":
    main()
