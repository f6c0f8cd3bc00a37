"""Memory and start-up: the resident size of an idle `python -m bot run` with a 10,000-project ledger,
polling the fake Bot API, and how long it takes to start.

    .venv/bin/python bench/memory.py [--projects 10000] [--reports 12] [--settle 5]

The ledger (bench/digest.py's builder: 10,000 projects, two milestones each, 12 monthly reports each)
goes into a temporary SQLite file. The jobs are run once for the present moment beforehand and their
messages marked sent, as on a service that has been running: the measured process then starts, catches
up (its scheduler runs every job once, which reads the whole ledger and finds nothing new to send), and
idles. Then, `--settle` seconds later, its VmRSS is read from /proc/<pid>/status (VmHWM, the peak, too);
and once more after a contact and a leader have chatted a little (/list, a report, /project, a button):
aiogram's Telegram types are built on first use (bot/telegram/lazy_aiogram.py), so the second figure includes the
ones everyday chats need.

Start-up: from spawning the process to its first getUpdates (the bot is polling), and to the end of the
scheduler's catch-up (every job has a job_runs row newer than the start). Target: VmRSS under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from sqlalchemy import func, select, update

from bench._common import Figure, print_figures
from bench.digest import build
from bot.config import Settings
from bot.demo.fake_telegram import FakeTelegram
from bot.domain.clock import utcnow
from bot.store.db import make_engine, make_sessionmaker, migrate
from bot.store.models import JobRun, Outbox, Person, Project
from jobs.base import JobContext
from jobs.registry import JOB_NAMES, run_job

TOKEN = "123456:BENCH"
TARGET_MB = 150.0
TIMEOUT = 300.0


@dataclass
class Measured:
    rss_mb: float
    peak_mb: float
    polling_s: float
    caught_up_s: float
    working_mb: float = 0.0  # after answering a few chats (the types they use are built by then)
    answered: int = 0


def status_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


async def prepare(url: str, data_dir: Path, projects: int, reports: int) -> None:
    """The ledger, and the jobs already run for now with their messages sent."""
    await migrate(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    try:
        await build(maker, projects, reports)
        settings = Settings(database_url=url, data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
        ctx = JobContext.from_settings(settings)
        now = utcnow()
        for name in JOB_NAMES:
            async with maker() as s:
                await run_job(s, name, now, ctx)
        async with maker() as s:
            await s.execute(update(Outbox).values(state="sent", sent_at=now))
            await s.execute(JobRun.__table__.delete())
            await s.commit()
    finally:
        await engine.dispose()


async def caught_up(url: str) -> bool:
    """Every job has run in the measured process (prepare() left job_runs empty)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            return int(await s.scalar(select(func.count()).select_from(JobRun)) or 0) >= len(JOB_NAMES)
    finally:
        await engine.dispose()


async def run_idle(url: str, data_dir: Path, settle: float) -> Measured:
    async with FakeTelegram(token=TOKEN) as fake:
        env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.base_url, "DATABASE_URL": url,
               "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        log = (data_dir / "run.log").open("w")
        spawned = time.monotonic()
        child = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=data_dir, env=env,
                                                     stdout=log, stderr=subprocess.STDOUT)
        try:
            polling = caught = 0.0
            while time.monotonic() - spawned < TIMEOUT:
                if child.returncode is not None:
                    raise SystemExit(f"`bot run` exited with {child.returncode}:\n{_tail(data_dir / 'run.log')}")
                if not polling and fake.method_calls["getUpdates"]:
                    polling = time.monotonic() - spawned
                if polling and not caught and await caught_up(url):
                    caught = time.monotonic() - spawned
                if polling and caught:
                    break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"`bot run` did not start polling and catch up in {TIMEOUT:.0f} s:\n"
                                 f"{_tail(data_dir / 'run.log')}")
            await asyncio.sleep(settle)
            idle = Measured(status_mb(child.pid, "VmRSS"), status_mb(child.pid, "VmHWM"), polling, caught)
            idle.answered = await chat_a_little(fake, url)
            await asyncio.sleep(settle)
            idle.working_mb = status_mb(child.pid, "VmRSS")
            return idle
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(child.wait(), 30)
                except TimeoutError:
                    child.kill()
                    await child.wait()
            log.close()


async def chat_a_little(fake: FakeTelegram, url: str) -> int:
    """A contact lists their county, reports on a project, opens it and taps its first button; a leader lists
    a county: the everyday updates, so that the types they use have been built. Returns the replies."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            contact, county_id = (await s.execute(select(Person.telegram_id, Person.county_id).where(
                Person.role == "contact").order_by(Person.id).limit(1))).one()
            leader = await s.scalar(select(Person.telegram_id).where(Person.role == "leader").limit(1))
            code, progress = (await s.execute(select(Project.code, Project.progress).where(
                Project.county_id == county_id, Project.status == "started", Project.progress < 95).limit(1))).one()
    finally:
        await engine.dispose()
    before = len(fake.sent)
    fake.user(contact, first_name="联络员")
    fake.user(leader, first_name="市领导")
    for telegram_id, text in ((contact, "/list"), (contact, f"{code} {progress + 1}% 管网铺设"),
                              (contact, f"/project {code}"), (leader, "/list")):
        fake.send_text(telegram_id, text)
        await fake.wait_idle(timeout=30)
    card = fake.messages_to(contact)[-1]
    if card.callback_data():
        fake.press(contact, card, card.callback_data()[0])
        await fake.wait_idle(timeout=30)
    return len(fake.sent) - before


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def measure(projects: int = 10_000, reports: int = 12, settle: float = 5.0) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="qs_memory_") as tmp:
        data_dir = Path(tmp)
        url = f"sqlite+aiosqlite:///{data_dir / 'qingshui.db'}"
        started = time.perf_counter()
        await prepare(url, data_dir, projects, reports)
        print(f"{projects:,} projects, {projects * reports:,} reports; ledger and first job run ready in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        m = await run_idle(url, data_dir, settle)
    print(f"`python -m bot run`: polling after {m.polling_s:.1f} s, catch-up done after {m.caught_up_s:.1f} s; "
          f"idle {settle:.0f} s later VmRSS {m.rss_mb:.0f} MB (peak VmHWM {m.peak_mb:.0f} MB)")
    print(f"after {m.answered} answers (a report, /list, /project, a button): VmRSS {m.working_mb:.0f} MB")
    figures = [Figure(f"memory: idle `run`, {projects:,} projects (VmRSS)", round(m.rss_mb, 1), TARGET_MB, "MB"),
               Figure("memory: the same, after a few chats", round(m.working_mb, 1), TARGET_MB, "MB")]
    print()
    print_figures(figures)
    print(f"  (start-up: polling {m.polling_s:.1f} s, caught up {m.caught_up_s:.1f} s; peak VmHWM {m.peak_mb:.0f} MB)")
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=12, help="monthly reports per project")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading VmRSS")
    args = parser.parse_args(argv)
    return asyncio.run(measure(args.projects, args.reports, args.settle))


if __name__ == "__main__":
    main()
