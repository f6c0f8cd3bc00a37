"""What the fault tests share: `python -m bot run` as a real subprocess (killed in `finally`, always),
a fresh PostgreSQL database per module, loopback proxies to cut the database or spread webhook
updates over instances, bulk test data, and reading the outbox against what the fake Bot API got.

Every wait has a hard timeout; everything listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.demo.fake_telegram import BOT_ID, FakeTelegram
from bot.domain.periods import period_of
from bot.store.lease import SCHEDULER_LEASE
from bot.store.models import County, Lease, Outbox, Person, Project, Report, utcnow
from bot.telegram.sender import PRESENCE_PREFIX
from tests.conftest import empty_pg_database, fresh_pg_database  # noqa: F401 (re-exported for the fault tests)

TOKEN = f"{BOT_ID}:TEST"
SECRET = "fault-test-secret"
START_TIMEOUT = 90.0  # a cold `python -m bot run` on a busy 2-core machine takes several seconds
SEND_METHOD = {"message": "sendMessage", "photo": "sendPhoto", "document": "sendDocument"}
SHOWN = frozenset(SEND_METHOD.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float, what: str, *, every: float = 0.05,
    log: Callable[[], str] | None = None,
) -> None:
    """Poll `check` until it is true; AssertionError naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}\n{log() if log else ''}")
        await asyncio.sleep(every)


# ---------------------------------------------------------------------------------------------- the service


def service_env(db_url: str, data_dir: Path, fake: FakeTelegram, **settings: object) -> dict[str, str]:
    """The environment of one `python -m bot run`: no setting leaks in from the developer's shell."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    env.update({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.base_url, "DATABASE_URL": db_url,
                "DATA_DIR": str(data_dir), "QUIET_HOURS": "", "LEASE_SECONDS": "5", "PYTHONUNBUFFERED": "1"})
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


def webhook_settings(port: int, url: str) -> dict[str, object]:
    return {"webhook_url": url, "webhook_secret": SECRET, "webhook_host": "127.0.0.1", "webhook_port": port}


class Service:
    """One `python -m bot run` process. Its output goes to a file (shown when a wait fails)."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name, self.env, self.workdir = name, env, workdir
        self.log_path = workdir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self._log_file: TextIO | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> Service:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("a", encoding="utf-8")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.workdir, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=self._log_file, stderr=asyncio.subprocess.STDOUT,
        )
        return self

    def log(self) -> str:
        text_ = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return f"--- {self.name} (pid {self.process.pid if self.process else '-'}) ---\n{text_[-6000:]}"

    async def ready(self, within: float = START_TIMEOUT) -> Service:
        """Until it takes updates (polling started or webhook listening) and its sender runs."""
        def up() -> bool:
            if not self.running:
                code = self.process.returncode if self.process else None
                raise AssertionError(f"{self.name} exited with {code}\n{self.log()}")
            out = self.log_path.read_text(encoding="utf-8", errors="replace")
            return "background started" in out and ("Run polling" in out or "webhook listening" in out)

        await wait_until(up, within, f"{self.name} to start", every=0.1, log=self.log)
        return self

    async def kill(self) -> None:
        """SIGKILL: no handler, no `finally`, no shutdown runs."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.process.wait(), 30)
        self._close_log()

    async def terminate(self, within: float = 30.0) -> int | None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), within)
            except TimeoutError:
                await self.kill()
        self._close_log()
        return self.process.returncode if self.process else None

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@asynccontextmanager
async def services() -> AsyncIterator[Callable[[str, dict[str, str], Path], Awaitable[Service]]]:
    """Start services with the yielded function; every one of them is killed on the way out."""
    started: list[Service] = []

    async def start(name: str, env: dict[str, str], workdir: Path) -> Service:
        service = await Service(name, env, workdir).start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            with contextlib.suppress(Exception):
                await service.kill()


# ---------------------------------------------------------------------------------------------- databases


def via(url: str, port: int) -> str:
    """A PostgreSQL URL pointed at 127.0.0.1:`port` (a proxy) instead of its own host and port."""
    scheme, rest = url.split("://", 1)
    credentials, _, path = rest.partition("@")
    return f"{scheme}://{credentials}@127.0.0.1:{port}/{path.split('/', 1)[1]}"


class TcpProxy:
    """A loopback TCP proxy to cut a database connection at will: `cut()` closes the listener and
    every connection through it; `restore()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()
        self._writers.discard(sink)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server goes away
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()


# ---------------------------------------------------------------------------------------------- webhooks


class RoundRobin:
    """A loopback load balancer for webhook updates: each POST goes to the next instance, and to the
    one after it when that one does not answer (as a balancer's health check would)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/telegram"
        self.served: Counter[str] = Counter()
        self._turn = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> RoundRobin:
        app = web.Application()
        app.router.add_post("/telegram", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        passed = ("content-type", "x-telegram-bot-api-secret-token")
        headers = {k: v for k, v in request.headers.items() if k.lower() in passed}
        assert self._client is not None
        for _ in range(len(self.backends)):
            backend = self.backends[self._turn % len(self.backends)]
            self._turn += 1
            try:
                async with self._client.post(backend, data=body, headers=headers) as resp:
                    self.served[backend] += 1
                    return web.Response(status=resp.status, body=await resp.read(),
                                        content_type=resp.content_type or "application/json")
            except aiohttp.ClientConnectionError:
                continue  # that instance is down: the next one
        return web.Response(status=502)


# ---------------------------------------------------------------------------------------------- test data


@dataclass(frozen=True)
class Seeded:
    county_ids: list[int]
    telegram_ids: list[int]


async def seed_people(
    sessionmaker: async_sessionmaker[AsyncSession], fake: FakeTelegram, *, role: str, count: int,
    first_telegram_id: int, counties: int = 4, projects_per_county: int = 2, status: str = "started",
    reported: bool = False,
) -> Seeded:
    """Counties with projects on plan (green), and `count` people of `role` spread over them, bound to
    Telegram and known to the fake. Projects are created only with the first call (no counties yet);
    `reported`: each has this month's update already (nothing for the alerts job, whatever the date)."""
    async with sessionmaker() as s:
        county_ids = list(await s.scalars(select(County.id).order_by(County.sort_order)))
        if not county_ids:
            names = ["祁县", "平遥县", "介休市", "灵石县", "寿阳县", "昔阳县", "和顺县", "左权县"][:counties]
            rows = [County(name=name, sort_order=i) for i, name in enumerate(names, 1)]
            s.add_all(rows)
            await s.flush()
            county_ids = [c.id for c in rows]
            today = utcnow().date()
            for c in rows:
                for k in range(projects_per_county):
                    s.add(Project(
                        code=f"JZ-{c.id:02d}{k:02d}", name=f"{c.name}第{k + 1}号雨污分流工程", county_id=c.id,
                        category="雨污分流改造", unit="住建局", planned_start=today - dt.timedelta(days=300),
                        planned_finish=today + dt.timedelta(days=300), investment=1000, status=status,
                        progress=100 if status == "completed" else 60 if status == "started" else 0,
                        actual_start=None if status == "not_started" else today - dt.timedelta(days=290),
                        actual_finish=today - dt.timedelta(days=5) if status == "completed" else None,
                    ))
            if reported:
                await s.flush()
                period = period_of(utcnow(), ZoneInfo(Settings.model_fields["timezone"].default))
                s.add_all(Report(project_id=pid, period=period, kind="no_change")
                          for pid in await s.scalars(select(Project.id)))
        ids = list(range(first_telegram_id, first_telegram_id + count))
        for n, telegram_id in enumerate(ids):
            county = county_ids[n % len(county_ids)] if role in ("contact", "county_leader") else None
            s.add(Person(telegram_id=telegram_id, name=f"{role}{n:03d}", role=role, county_id=county, language="zh"))
            fake.user(telegram_id, f"{role}{n:03d}", language_code="zh-hans")
        await s.commit()
    return Seeded(county_ids, ids)


async def hold_scheduler_lease(
    sessionmaker: async_sessionmaker[AsyncSession], *, until: dt.datetime | None = None
) -> None:
    """As if another instance held the scheduler lease: the service under test runs no job of its own."""
    async with sessionmaker() as s:
        s.add(Lease(name=SCHEDULER_LEASE, holder="another-instance",
                    expires_at=until or utcnow() + dt.timedelta(days=1)))
        await s.commit()


async def let_go_scheduler_lease(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s:
        await s.execute(update(Lease).where(Lease.name == SCHEDULER_LEASE)
                        .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
        await s.commit()


@dataclass(frozen=True)
class AtTheKill:
    claimed: list[int]  # outbox rows the dead sender held (claimed, not recorded as sent or failed)
    in_flight: int  # sends the Bot API had begun to receive whose outcome the sender had not recorded


async def after_the_kill(sessionmaker: async_sessionmaker[AsyncSession], fake: FakeTelegram) -> AtTheKill:
    """What a killed sender left behind (in a run without send errors); then its claims (which lapse
    after minutes) and its presence (after 30 s) are moved into the past instead of waiting for them.

    A message is in flight from the moment its request reaches the Bot API until the sender has
    recorded the answer; Telegram has no idempotency key, so each of those may go twice."""
    await fake.wait_idle(quiet=0.3, timeout=10)  # requests still in the sockets arrive first
    started = sum(fake.method_calls[method] for method in SHOWN)
    past = utcnow() - dt.timedelta(seconds=1)
    async with sessionmaker() as s:
        claimed = list(await s.scalars(select(Outbox.id).where(Outbox.state == "sending").order_by(Outbox.id)))
        recorded = len(list(await s.scalars(select(Outbox.id).where(Outbox.state == "sent"))))
        await s.execute(update(Outbox).where(Outbox.state == "sending").values(claimed_until=past))
        await s.execute(update(Lease).where(Lease.name.like(f"{PRESENCE_PREFIX}%")).values(expires_at=past))
        await s.commit()
    return AtTheKill(claimed, started - recorded)


async def outbox_rows(sessionmaker: async_sessionmaker[AsyncSession], kind: str | None = None) -> list[Outbox]:
    async with sessionmaker() as s:
        query = select(Outbox).order_by(Outbox.id)
        if kind is not None:
            query = query.where(Outbox.kind == kind)
        return list(await s.scalars(query))


async def count_unsent(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as s:
        return len(list(await s.scalars(select(Outbox.id).where(Outbox.state.in_(("pending", "sending"))))))


def _shown_as(row: Outbox) -> tuple[int, str, str | None]:
    payload: dict[str, Any] = row.payload or {}
    words = payload.get("text") if row.method == "message" else payload.get("caption") or None
    return row.chat_id, SEND_METHOD[row.method], words


def deliveries(fake: FakeTelegram, rows: list[Outbox]) -> dict[int, int]:
    """How many times the fake accepted each outbox row's message (by chat, method and exact text)."""
    got = Counter((r.chat_id, r.method, r.html) for r in fake.sent if r.method in SHOWN)
    return {row.id: got[_shown_as(row)] for row in rows}


def in_chat_order(fake: FakeTelegram, rows: list[Outbox]) -> bool:
    """Each chat received its rows in the order they were queued (first deliveries)."""
    position: dict[tuple[int, str, str | None], int] = {}
    for index, record in enumerate(fake.sent):
        position.setdefault((record.chat_id, record.method, record.html), index)  # type: ignore[arg-type]
    by_chat: dict[int, list[int]] = {}
    for row in rows:
        by_chat.setdefault(row.chat_id, []).append(position[_shown_as(row)])
    return all(seen == sorted(seen) for seen in by_chat.values())


async def reports_of(sessionmaker: async_sessionmaker[AsyncSession], code: str) -> list[Report]:
    async with sessionmaker() as s:
        return list(await s.scalars(
            select(Report).join(Project, Project.id == Report.project_id).where(Project.code == code)
            .order_by(Report.id)))


def said_to(fake: FakeTelegram, chat_id: int, since: int = 0) -> str:
    return "\n".join(r.text or "" for r in fake.sent[since:] if r.chat_id == chat_id and r.method in SHOWN)


def refused(fake: FakeTelegram) -> list[Any]:
    """Calls the fake refused, bar a killed process's long poll, which its successor's poll ends (409)."""
    return [r for r in fake.rejected if r.method != "getUpdates"]
