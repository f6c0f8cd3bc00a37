"""In-process fake of the Telegram Bot API for end-to-end tests, benchmarks and demos.

It validates requests the way Telegram does (same error codes and descriptions), so a
bot that passes against it does not get surprised by real Telegram. Updates are
produced by the test-facing user simulation (``send_text``, ``press``, ...) and are
served through real long polling or pushed to a webhook.

This module is the HTTP app: start and stop, the token, reading a request's parameters and
dispatching it to a method, error answers. FakeTelegram's methods live by concern beside it:
api.py (limits, errors, records), messages.py (sends and edits), updates.py (polling and webhook),
files.py (uploads, downloads, the demo's record folder), faults.py (fault injection and flood
limits), users.py (the test-facing user simulation), commands.py (getMe, commands, menu button).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.demo.fake_telegram.api import (
    ApiError,
    FakeChat,
    RateLimits,
    Rejection,
    SentRecord,
    _bad,
    _Fault,
    _Params,
    _Queued,
    _read_multipart,
    _StoredFile,
    _Storm,
    _Upload,
    _Webhook,
)
from bot.demo.fake_telegram.commands import BotProfileMixin
from bot.demo.fake_telegram.faults import FaultsMixin
from bot.demo.fake_telegram.files import FilesMixin
from bot.demo.fake_telegram.messages import MessagesMixin
from bot.demo.fake_telegram.updates import UpdatesMixin
from bot.demo.fake_telegram.users import UserSimulationMixin


class FakeTelegram(FaultsMixin, UserSimulationMixin, UpdatesMixin, MessagesMixin, FilesMixin, BotProfileMixin):
    """Fake Bot API server. Use ``async with FakeTelegram() as fake:`` and point aiogram at
    ``TelegramAPIServer.from_base(fake.base_url)``."""

    def __init__(
        self,
        *,
        token: str | None = None,
        rate_limits: RateLimits | None = None,
        record_dir: str | Path | None = None,
        strict_amp: bool = True,
        webhook_retries: int = 3,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.token = token  # fixed by the first request if None
        self.limits = rate_limits or RateLimits()
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.strict_amp = strict_amp
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout

        self.chats: dict[int, FakeChat] = {}
        self.sent: list[SentRecord] = []
        self.rejected: list[Rejection] = []
        self.counters: Counter[str] = Counter()  # outcome -> count ("ok", "bad_request", "rate_limited", ...)
        self.method_calls: Counter[str] = Counter()
        self.webhook_failures: list[dict[str, Any]] = []  # updates given up after retries
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}

        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._queue: list[_Queued] = []
        self._next_update_id = 100_000
        self._update_event = asyncio.Event()
        self._poll_seq = 0
        self._allowed_updates: list[str] | None = None
        self._open_queries: dict[str, dict[str, Any]] = {}
        self._query_counter = itertools.count(4_000_000_000_000_000_001)
        self._webhook: _Webhook | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._storm: _Storm | None = None
        self._chat_windows: dict[int, deque[float]] = {}
        self._global_window: deque[float] = deque()
        self._sent_event = asyncio.Event()
        self._closing = asyncio.Event()
        self._index_rows: list[str] = []

        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.port: int | None = None

        handlers: dict[str, Callable[[_Params], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "getFile": self._get_file,
        }
        # Telegram method names are case-insensitive; keep the canonical name for records.
        self._methods: dict[str, tuple[str, Callable[[_Params], Any]]] = {
            name.lower(): (name, fn) for name, fn in handlers.items()
        }

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # Telegram accepts 50 MB uploads
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        # No handler cancellation: like Telegram, a call whose client gave up may still execute.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._client = aiohttp.ClientSession()
        self._closing.clear()

    async def stop(self) -> None:
        self._closing.set()
        self._wake_pollers()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        if not self._check_token(request.match_info["token"]):
            return self._error(ApiError(401, "Unauthorized"), None, None)
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            self.counters["not_found"] += 1
            return self._error(ApiError(404, "Not Found: method not found"), None, None)
        name, handler = entry
        self.method_calls[name] += 1
        try:
            params = await self._read_params(request)
        except ApiError as e:
            return self._error(e, name, None)
        try:
            await self._inject(name.lower())
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as e:
            return self._error(e, name, params)
        self.counters["ok"] += 1
        return web.Response(body=json.dumps({"ok": True, "result": result}).encode(), content_type="application/json")

    def _check_token(self, token: str) -> bool:
        if self.token is None:
            self.token = token  # one bot per server: the first token seen wins
        return token == self.token

    async def _read_params(self, request: web.Request) -> _Params:
        values: dict[str, Any] = dict(request.query)
        uploads: dict[str, _Upload] = {}
        if request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    data = json.loads(await request.read())
                except ValueError:
                    raise _bad("can't parse JSON encoded request") from None
                if not isinstance(data, dict):
                    raise _bad("can't parse JSON encoded request")
                values.update(data)
            elif ctype.startswith("multipart/"):
                form, uploads = await _read_multipart(await request.multipart())
                values.update(form)
            else:
                values.update(await request.post())
        return _Params(values, uploads)

    def _error(self, e: ApiError, method: str | None, params: _Params | None) -> web.Response:
        outcome = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}
        if e.code != 429:  # 429s are counted where they arise (rate_limited / injected / storm)
            self.counters[outcome.get(e.code, f"error_{e.code}")] += 1
        if method is not None:
            self.rejected.append(Rejection(method, params.values if params else {}, e.description))
        return web.Response(body=json.dumps(e.payload()).encode(), status=e.code, content_type="application/json")
