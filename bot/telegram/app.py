"""The service: builds the Bot and the Dispatcher from settings and runs them in long polling, or
as a webhook when WEBHOOK_URL is set. The only module of bot/ that wires in handlers/.

    build_bot(settings) -> Bot
    build_dispatcher(settings, sessionmaker, clock=...) -> (Dispatcher, InFlight)
    build_app(settings, sessionmaker, clock=...) -> App      # bot + dispatcher, not yet running
    await app.serve(stop)                                     # reach Telegram (retried), serve until `stop`
    await run_service(settings)                               # `qingshui run`: migrate, background, serve

Shutdown (SIGINT/SIGTERM, or `stop.set()`): stop taking updates, let the handlers in progress finish
(their reports are committed before they answer), stop the background sender and scheduler, then
close the Bot session and the database."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import signal
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import BotCommand
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, settings_error
from bot.domain.clock import Clock, utcnow
from bot.store.db import make_engine, make_sessionmaker, migrate, open_pool
from bot.store.db_gate import RESERVED_CONNECTIONS, DbGate, update_slots
from bot.store.fsm_storage import DbStorage
from bot.telegram.answer_pacing import PacedAnswers
from bot.telegram.background import start_background
from bot.telegram.bot_session import BotSession
from bot.telegram.pacing import Pacer, pacer_for
from bot.telegram.start import until_telegram_answers
from bot.telegram.warm_up import warm_up
from bot.texts import LANGUAGES, Texts
from bot.web.app import start_web
from handlers import routers
from handlers.access import AccessMiddleware
from handlers.context import ContextMiddleware
from handlers.db_session import SessionMiddleware
from handlers.dedupe import DedupeMiddleware
from handlers.errors import CallbackAnswerOnce
from handlers.identity import IdentityMiddleware
from handlers.throttle import Throttle
from handlers.tracking import InFlight

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 20.0  # seconds the handlers in progress get to finish
MENU = ("report", "list", "project", "web", "undo", "language", "help", "cancel")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def build_bot(settings: Settings, pacer: Pacer | None = None) -> Bot:
    """A Bot for BOT_TOKEN (SettingsError without it), on TELEGRAM_API_URL when set, speaking HTML.
    With `pacer`, its answers to updates are paced and retried under Telegram's limits (bot.telegram.answer_pacing)."""
    token = settings.require_token()
    api = TelegramAPIServer.from_base(settings.telegram_api_url) if settings.telegram_api_url else None
    session = BotSession(api=api) if api else BotSession()
    if pacer is not None:
        session.middleware(PacedAnswers(pacer))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_storage(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[BaseStorage, BaseEventIsolation]:
    """Dialog state in Redis when REDIS_URL is set (shared by instances, with a shared per-user lock),
    else in the database with a per-process lock."""
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage  # imports redis (~6 MB): only when it is used

        storage = RedisStorage.from_url(
            settings.redis_url, key_builder=DefaultKeyBuilder(prefix="qingshui", with_bot_id=True, with_destiny=True)
        )
        return storage, storage.create_isolation()
    return DbStorage(sessionmaker), SimpleEventIsolation()


def build_dispatcher(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow
) -> tuple[Dispatcher, InFlight]:
    """The Dispatcher with its workflow data (settings, sessionmaker, texts, clock), middlewares and
    routers. The returned InFlight tells how many updates are being handled (for draining)."""
    texts = Texts(settings.default_language)
    storage, isolation = build_storage(settings, sessionmaker)
    dp = Dispatcher(storage=storage, events_isolation=isolation, settings=settings, sessionmaker=sessionmaker,
                    texts=texts, clock=clock)
    inflight = InFlight()
    # outer, after aiogram's own (errors, user context, the FSM's per-person lock), in this order:
    # count → throttle (before any database work) → a database slot and the session → who → dedupe
    # (dedupe last: the update is recorded by the handler's own commit, not by who's)
    dp.update.outer_middleware(inflight)
    dp.update.outer_middleware(Throttle(settings.throttle_per_minute, texts, settings.default_language))
    dp.update.outer_middleware(SessionMiddleware(sessionmaker, DbGate(update_slots(settings.db_pool_size))))
    dp.update.outer_middleware(IdentityMiddleware(settings))
    dp.update.outer_middleware(DedupeMiddleware(sessionmaker))
    dp.update.outer_middleware(ContextMiddleware())  # `ctx` for the handlers
    # inner, for every router's handlers: acknowledge the button press, then authorize
    dp.callback_query.middleware(CallbackAnswerOnce(pre=True))
    dp.callback_query.middleware(AccessMiddleware())
    dp.message.middleware(AccessMiddleware())
    dp.include_routers(*routers())

    async def drain_before_closing(**_: object) -> None:
        await inflight.drain(SHUTDOWN_GRACE)

    # first among the shutdown handlers: the dialog storage closes only after the last handler is done
    dp.shutdown.register(drain_before_closing)
    dp.shutdown.handlers.insert(0, dp.shutdown.handlers.pop())
    return dp, inflight


def webhook_settings(settings: Settings) -> tuple[str, str] | None:
    """(URL, secret) in webhook mode, None for long polling; SettingsError when the secret is missing."""
    if not settings.webhook_url:
        return None
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not secret:
        raise settings_error(settings.default_language, "WEBHOOK_SECRET", "webhook_secret_missing",
                             url_setting="WEBHOOK_URL")
    if not _SECRET.fullmatch(secret):
        raise settings_error(settings.default_language, "WEBHOOK_SECRET", "webhook_secret_malformed")
    return settings.webhook_url, secret


@dataclass
class App:
    settings: Settings
    bot: Bot
    dispatcher: Dispatcher
    sessionmaker: async_sessionmaker[AsyncSession]
    inflight: InFlight
    pacer: Pacer  # shared by the bot's answers and the outbox sender

    async def set_commands(self) -> None:
        """The command menu in every language; the default scope in DEFAULT_LANGUAGE."""
        texts: Texts = self.dispatcher["texts"]

        def menu(lang: str) -> list[BotCommand]:
            return [BotCommand(command=c, description=texts(lang, f"menu.{c}")) for c in MENU]

        await self.bot.set_my_commands(menu(self.settings.default_language))
        for lang in LANGUAGES:
            await self.bot.set_my_commands(menu(lang), language_code=lang)

    async def _reach_telegram(self, stop: asyncio.Event, register: Callable[[], Awaitable[object]]) -> bool:
        """getMe, the command menu and `register` (deleteWebhook or setWebhook), retried until Telegram
        answers (bot/telegram/start.py); False when `stop` came first."""

        async def start_calls() -> None:
            await self.bot.me()
            await self.set_commands()
            await register()

        return await until_telegram_answers(self.settings, start_calls, stop)

    async def serve(self, stop: asyncio.Event) -> None:
        """Reach Telegram (however long it takes), take updates until `stop` is set, then let the
        handlers in progress finish."""
        webhook = webhook_settings(self.settings)
        if webhook is None:
            await self._poll(stop)
        else:
            await self._webhook(stop, *webhook)
        await self.inflight.drain(SHUTDOWN_GRACE)

    async def _poll(self, stop: asyncio.Event) -> None:
        dp = self.dispatcher
        if not await self._reach_telegram(stop, lambda: self.bot.delete_webhook(drop_pending_updates=False)):
            return
        polling = asyncio.create_task(dp.start_polling(
            self.bot, handle_signals=False, close_bot_session=False, allowed_updates=dp.resolve_used_update_types(),
        ))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            try:
                await dp.stop_polling()
            except RuntimeError:  # stopped before polling had started
                polling.cancel()
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling

    async def _webhook(self, stop: asyncio.Event, url: str, secret: str) -> None:
        dp = self.dispatcher
        # handled before answering, so Telegram redelivers an update whose handling failed
        handler = SimpleRequestHandler(dp, self.bot, handle_in_background=False, secret_token=secret)
        application = web.Application()
        application.router.add_post(urllib.parse.urlsplit(url).path or "/", handler.handle)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.webhook_host, self.settings.webhook_port)
        await dp.emit_startup(bot=self.bot, dispatcher=dp, **dp.workflow_data)
        try:
            await site.start()
            registered = await self._reach_telegram(stop, lambda: self.bot.set_webhook(
                url, secret_token=secret, allowed_updates=dp.resolve_used_update_types(), drop_pending_updates=False))
            if registered:
                log.info("webhook listening on %s:%s for %s", self.settings.webhook_host, self.settings.webhook_port,
                         url)
                await stop.wait()
            await site.stop()  # no new updates; the ones in progress finish below
            await self.inflight.drain(SHUTDOWN_GRACE)
        finally:
            await runner.cleanup()
            await dp.emit_shutdown(bot=self.bot, dispatcher=dp, **dp.workflow_data)

    async def close(self) -> None:
        await self.dispatcher.storage.close()
        await self.bot.session.close()


def build_app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow) -> App:
    webhook_settings(settings)  # a webhook without its secret fails here, before anything starts
    pacer = pacer_for(settings)
    bot = build_bot(settings, pacer)
    dispatcher, inflight = build_dispatcher(settings, sessionmaker, clock=clock)
    return App(settings=settings, bot=bot, dispatcher=dispatcher, sessionmaker=sessionmaker, inflight=inflight,
               pacer=pacer)


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, _stop_by_signal, stop, sig)


def _stop_by_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.warning("%s: shutting down (updates in progress finish first)", sig.name)
    stop.set()


async def run_service(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """`qingshui run`: the bot, the outbox sender and the job scheduler, until SIGINT/SIGTERM."""
    settings.require_token()
    webhook_settings(settings)
    await migrate(settings.db_url)
    engine = make_engine(settings.db_url, pool_size=settings.db_pool_size)
    sessionmaker = make_sessionmaker(engine)
    app = build_app(settings, sessionmaker)
    if stop is None:
        stop = asyncio.Event()
        stop_on_signals(stop)
    try:
        warm_up()  # before the first update: a restart's first answers are not half a second late
        await open_pool(engine, settings.db_pool_size - RESERVED_CONNECTIONS)  # those updates take turns with
        # the outbox and the jobs run even while Telegram cannot be reached (serve retries it)
        background = await start_background(settings, app.bot, sessionmaker, pacer=app.pacer)
        cockpit = await start_web(settings, sessionmaker)  # README "Cockpit"; None when not served
        gc.freeze()  # what start-up built lives as long as the process: full collections stop walking it
        try:
            await app.serve(stop)
        finally:
            if cockpit is not None:
                await cockpit.cleanup()
            await background.stop()
    finally:
        await app.close()
        await engine.dispose()
