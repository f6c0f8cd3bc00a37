"""In-process fake of the Telegram Bot API for end-to-end tests, benchmarks and demos.

It validates requests the way Telegram does (same error codes and descriptions), so a
bot that passes against it does not get surprised by real Telegram. Updates are
produced by the test-facing user simulation (``send_text``, ``press``, ...) and are
served through real long polling or pushed to a webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import math
import mimetypes
import random
import re
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from aiohttp import hdrs, web

from bot.demo.fake_telegram.html_check import HtmlParseError, finalize_entities, parse_html, utf16_len

BOT_ID = 1000
BOT_USER: dict[str, Any] = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Qingshui",
    "username": "qingshui_test_bot",
}

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_BUTTONS = 100
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
EDIT_METHODS = frozenset({"editMessageText", "editMessageCaption", "editMessageReplyMarkup"})
# Faults/storms with methods=None leave these alone: breaking them only breaks the test harness.
_FAULT_EXEMPT = frozenset({"getupdates", "getme"})

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# Update types Telegram skips unless explicitly listed in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Smallest well-formed JPEG-ish payload; content is never decoded.
DEFAULT_PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


class ApiError(Exception):
    """A Bot API error answer; raised by method handlers."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _too_many(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


@dataclass(slots=True)
class FakeChat:
    """A registered user (private chat) or group."""

    id: int
    type: str = "private"
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    title: str | None = None
    blocked: bool = False

    def user_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name or ""}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        if self.language_code:
            d["language_code"] = self.language_code
        return d

    def chat_dict(self) -> dict[str, Any]:
        if self.type != "private":
            return {"id": self.id, "type": self.type, "title": self.title or ""}
        d: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name or ""}
        if self.last_name:
            d["last_name"] = self.last_name
        if self.username:
            d["username"] = self.username
        return d


@dataclass(slots=True)
class SentRecord:
    """One accepted outgoing bot call (sends, edits, deletes, chat actions, callback answers)."""

    seq: int
    method: str
    chat_id: int | None
    message_id: int | None = None
    text: str | None = None  # plain text (or caption) after entity parsing
    html: str | None = None  # text/caption exactly as the bot sent it
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    file_name: str | None = None
    file_bytes: bytes | None = None
    mime_type: str | None = None
    message: dict[str, Any] | None = None  # Bot API Message returned to the bot
    params: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0

    @property
    def is_message(self) -> bool:
        return self.method in SEND_METHODS

    def callback_data(self) -> list[str]:
        """All callback_data values of the inline keyboard, in order."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


class Rejection(NamedTuple):
    method: str
    params: dict[str, Any]
    description: str


@dataclass(slots=True)
class RateLimits:
    """Telegram-like flood limits; None disables a limit (all off by default)."""

    per_chat_per_second: int | None = None
    global_per_second: int | None = None
    group_per_minute: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.per_chat_per_second or self.global_per_second or self.group_per_minute)


@dataclass(slots=True)
class _Upload:
    filename: str
    data: bytes
    content_type: str | None


@dataclass(slots=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    kind: str = "document"  # "photo" or "document"
    sizes: list[dict[str, Any]] | None = None  # PhotoSize list when kind == "photo"

    def file_dict(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass(slots=True)
class _Queued:
    update_id: int
    update: dict[str, Any]
    redelivery: bool = False
    delivered: bool = False


@dataclass(slots=True)
class _Fault:
    remaining: int
    status: int
    retry_after: int | None
    methods: frozenset[str] | None
    description: str | None
    delay: float = 0.0
    execute: bool = True  # for delays: still perform the call afterwards

    def matches(self, method: str) -> bool:
        if self.methods is None:
            return method not in _FAULT_EXEMPT
        return method in self.methods


@dataclass(slots=True)
class _Storm:
    probability: float
    kinds: tuple[str, ...]
    rng: random.Random
    retry_after: int
    hang_seconds: float
    methods: frozenset[str] | None

    def matches(self, method: str) -> bool:
        if self.methods is None:
            return method not in _FAULT_EXEMPT
        return method in self.methods


@dataclass(slots=True)
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    semaphore: asyncio.Semaphore
    chat_locks: dict[Any, asyncio.Lock] = field(default_factory=dict)
    pending: int = 0
    last_error_date: int | None = None
    last_error_message: str | None = None


class _Params:
    """Request parameters from query string, form, multipart or JSON, with typed getters."""

    __slots__ = ("uploads", "values")

    def __init__(self, values: dict[str, Any], uploads: dict[str, _Upload]) -> None:
        self.values = values
        self.uploads = uploads

    def get_str(self, name: str) -> str | None:
        v = self.values.get(name)
        if v is None or isinstance(v, str):
            return v
        return str(v)

    def get_int(self, name: str, error: str) -> int | None:
        v = self.values.get(name)
        if v is None or v == "":
            return None
        if isinstance(v, bool):
            raise _bad(error)
        try:
            return int(v)
        except (TypeError, ValueError):
            raise _bad(error) from None

    def get_bool(self, name: str) -> bool:
        v = self.values.get(name)
        if isinstance(v, str):
            return v.lower() in ("true", "1")
        return bool(v)

    def get_json(self, name: str, error: str) -> Any:
        v = self.values.get(name)
        if isinstance(v, str):
            if not v:
                return None
            try:
                return json.loads(v)
            except ValueError:
                raise _bad(error) from None
        return v

    def get_file(self, name: str) -> _Upload | str | None:
        v = self.values.get(name)
        if v is None:
            return self.uploads.get(name)
        if isinstance(v, str) and v.startswith("attach://"):
            upload = self.uploads.get(v[len("attach://") :])
            if upload is None:
                raise _bad(f"can't use file of type attach:// for field {name}: file not found")
            return upload
        return str(v)


async def _read_multipart(reader: aiohttp.MultipartReader) -> tuple[dict[str, Any], dict[str, _Upload]]:
    values: dict[str, Any] = {}
    uploads: dict[str, _Upload] = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            uploads[part.name] = _Upload(part.filename, bytes(await part.read()), part.headers.get(hdrs.CONTENT_TYPE))
        else:
            values[part.name] = await part.text()
    return values, uploads


class FakeTelegram:
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

    # ------------------------------------------------------------------ lifecycle

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

    # ------------------------------------------------------------------ configuration

    def set_rate_limits(
        self,
        per_chat_per_second: int | None = None,
        global_per_second: int | None = None,
        group_per_minute: int | None = None,
    ) -> None:
        self.limits = RateLimits(per_chat_per_second, global_per_second, group_per_minute)
        self._chat_windows.clear()
        self._global_window.clear()

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: int | None = None,
        methods: Iterable[str] | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching calls with ``status``.

        ``methods=None`` matches every method except getUpdates and getMe (so a running
        poller does not swallow the fault); name them explicitly to fail those.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(_Fault(n, status, retry_after, _method_set(methods), description))

    def delay_next(
        self, n: int = 1, seconds: float = 1.0, methods: Iterable[str] | None = None, execute: bool = True
    ) -> None:
        """Make the next ``n`` matching calls hang for ``seconds``.

        With ``execute=True`` the call is then performed even if the client timed out
        meanwhile (Telegram behaves so: a timed-out send may still have been delivered);
        with ``execute=False`` it answers 504 Gateway Timeout without doing anything.
        """
        self._delays.append(_Fault(n, 504, None, _method_set(methods), None, delay=seconds, execute=execute))

    def set_storm(
        self,
        probability: float,
        kinds: Iterable[str] = ("429", "500", "502", "timeout"),
        seed: int | None = None,
        *,
        retry_after: int = 1,
        hang_seconds: float = 2.0,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Randomly fail calls with 429/5xx or hang (``"timeout"``) until ``calm()``."""
        kinds_t = tuple(str(k) for k in kinds)
        for k in kinds_t:
            if k != "timeout" and not k.isdigit():
                raise ValueError(f"unknown storm kind {k!r}")
        self._storm = _Storm(probability, kinds_t, random.Random(seed), retry_after, hang_seconds, _method_set(methods))

    def calm(self) -> None:
        """Stop the storm and drop pending fail_next/delay_next rules."""
        self._storm = None
        self._faults.clear()
        self._delays.clear()

    # ------------------------------------------------------------------ user simulation

    def user(
        self,
        user_id: int,
        first_name: str = "Test",
        username: str | None = None,
        language_code: str | None = "zh-hans",
        last_name: str | None = None,
    ) -> FakeChat:
        """Register a user and their private chat with the bot (idempotent, updates fields)."""
        chat = FakeChat(user_id, "private", first_name, last_name, username, language_code)
        old = self.chats.get(user_id)
        if old is not None:
            chat.blocked = old.blocked
        self.chats[user_id] = chat
        return chat

    def group(self, chat_id: int, title: str = "Group") -> FakeChat:
        """Register a group chat (negative id); users send to it via ``send_text(chat_id=...)``."""
        chat = FakeChat(chat_id, "group", title=title)
        self.chats[chat_id] = chat
        return chat

    def block(self, user_id: int) -> None:
        self._require_user(user_id).blocked = True

    def unblock(self, user_id: int) -> None:
        self._require_user(user_id).blocked = False

    def send_text(
        self,
        user_id: int,
        text: str,
        reply_to_message_id: int | None = None,
        *,
        chat_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The user writes ``text``; returns the update. A leading /command gets a bot_command
        entity as Telegram adds one."""
        content: dict[str, Any] = {"text": text}
        if entities is None:
            m = _COMMAND_RE.match(text)
            if m:
                entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(m.group())}]
        if entities:
            content["entities"] = entities
        return self._user_update(user_id, chat_id, content, reply_to_message_id)

    def send_command(
        self, user_id: int, command: str, args: str | None = None, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        text = "/" + command.lstrip("/")
        if args:
            text += " " + args
        return self.send_text(user_id, text, chat_id=chat_id)

    def send_photo(
        self,
        user_id: int,
        caption: str | None = None,
        data: bytes = DEFAULT_PHOTO,
        reply_to_message_id: int | None = None,
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a photo; Telegram offers it in two sizes, both downloadable."""
        stored = self._store_photo(data)
        content: dict[str, Any] = {"photo": stored.sizes}
        if caption is not None:
            content["caption"] = caption
        return self._user_update(user_id, chat_id, content, reply_to_message_id)

    def send_document(
        self,
        user_id: int,
        file_name: str,
        data: bytes,
        mime: str = "application/octet-stream",
        caption: str | None = None,
        reply_to_message_id: int | None = None,
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        stored = self._store_file(data, "document", file_name=file_name, mime_type=mime)
        content: dict[str, Any] = {"document": _document_dict(stored)}
        if caption is not None:
            content["caption"] = caption
        return self._user_update(user_id, chat_id, content, reply_to_message_id)

    def press(self, user_id: int, message: Any, callback_data: str, *, check: bool = True) -> dict[str, Any]:
        """The user presses an inline button of a bot message; returns the callback_query update.

        ``message`` is a SentRecord, a Message dict/object or a message_id in the user's chat.
        With ``check`` the button must currently exist (a real client cannot press others).
        """
        user = self._require_user(user_id)
        chat_id, message_id = self._message_ref(user_id, message)
        stored = self._messages.get((chat_id, message_id))
        if stored is None:
            raise AssertionError(f"message {message_id} in chat {chat_id} does not exist (deleted?)")
        if check:
            rows = (stored.get("reply_markup") or {}).get("inline_keyboard") or []
            available = [b.get("callback_data") for row in rows for b in row]
            if callback_data not in available:
                raise AssertionError(
                    f"message {message_id} has no button with callback_data={callback_data!r}; has {available}"
                )
        self._unblock_on_activity(user)
        query_id = str(next(self._query_counter))
        query = {
            "id": query_id,
            "from": user.user_dict(),
            "message": dict(stored),
            "chat_instance": str(abs(hash(("ci", chat_id))) % 10**18),
            "data": callback_data,
        }
        self._open_queries[query_id] = query
        return self._enqueue({"callback_query": query})

    def deliver_again(self, update: dict[str, Any]) -> dict[str, Any]:
        """Deliver ``update`` once more with the same update_id (Telegram can duplicate)."""
        copy = json.loads(json.dumps(update))
        entry = _Queued(copy["update_id"], copy, redelivery=True)
        self._push(entry)
        return copy

    # ------------------------------------------------------------------ inspection

    def messages_to(self, user_id: int) -> list[SentRecord]:
        """Accepted sendMessage/sendPhoto/sendDocument records for this chat, in order."""
        return [r for r in self.sent if r.chat_id == user_id and r.method in SEND_METHODS]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current state of a message (after edits), or None if unknown/deleted."""
        return self._messages.get((chat_id, message_id))

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed (polling) or being delivered (webhook)."""
        return len(self._queue) + (self._webhook.pending if self._webhook else 0)

    async def wait_for(
        self,
        predicate: Callable[[SentRecord], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - test-facing API, mirrors pytest helpers
        *,
        since: int = 0,
    ) -> SentRecord:
        """First record in ``sent[since:]`` matching ``predicate``, waiting up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        i = since
        while True:
            while i < len(self.sent):
                rec = self.sent[i]
                i += 1
                if predicate(rec):
                    return rec
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching sent record within {timeout}s\n{self.log_tail()}")
            event = self._sent_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_idle(self, quiet: float = 0.2, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until all updates are consumed and no call arrived for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            before = (self._activity(), self.pending_updates)
            await asyncio.sleep(quiet)
            after = (self._activity(), self.pending_updates)
            if before == after and after[1] == 0:
                return
            if loop.time() > deadline:
                raise AssertionError(f"bot not idle after {timeout}s\n{self.log_tail()}")

    def _activity(self) -> int:
        # Idle polling keeps calling getUpdates; that is not bot activity.
        return self.method_calls.total() - self.method_calls["getUpdates"]

    def log_tail(self, n: int = 15) -> str:
        lines = ["recent sent:"]
        for r in self.sent[-n:]:
            lines.append(f"  #{r.seq} {r.method} chat={r.chat_id} msg={r.message_id} text={_short(r.text)}")
        lines.append("recent rejected:")
        for method, params, desc in self.rejected[-n:]:
            lines.append(f"  {method} {desc} params={_short(json.dumps(params, default=str, ensure_ascii=False))}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP layer

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

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        stored = self._files_by_path.get(request.match_info["file_path"])
        if not self._check_token(request.match_info["token"]) or stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

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

    async def _inject(self, method: str) -> None:
        """Apply delay_next / fail_next / storm rules to this call (raise ApiError to fail it)."""
        for rule in self._delays:
            if rule.remaining > 0 and rule.matches(method):
                rule.remaining -= 1
                self.counters["delayed"] += 1
                await self._sleep(rule.delay)
                if not rule.execute:
                    raise ApiError(504, "Gateway Timeout")
                break
        self._delays = [r for r in self._delays if r.remaining > 0]
        for rule in self._faults:
            if rule.remaining > 0 and rule.matches(method):
                rule.remaining -= 1
                self._faults = [r for r in self._faults if r.remaining > 0]
                self.counters[f"injected_{rule.status}"] += 1
                raise _fault_error(rule.status, rule.retry_after, rule.description)
        storm = self._storm
        if storm is not None and storm.matches(method) and storm.rng.random() < storm.probability:
            kind = storm.rng.choice(storm.kinds)
            self.counters[f"storm_{kind}"] += 1
            if kind == "timeout":
                await self._sleep(storm.hang_seconds)
                raise ApiError(504, "Gateway Timeout")
            raise _fault_error(int(kind), storm.retry_after, None)

    async def _sleep(self, seconds: float) -> None:
        # Wakes early on stop() so hanging calls never block shutdown.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # ------------------------------------------------------------------ updates

    def _user_update(
        self, user_id: int, chat_id: int | None, content: dict[str, Any], reply_to_message_id: int | None
    ) -> dict[str, Any]:
        user = self._require_user(user_id)
        chat = self.chats.get(chat_id if chat_id is not None else user_id)
        if chat is None:
            raise AssertionError(f"chat {chat_id} is not registered; call fake.group() first")
        self._unblock_on_activity(user)
        if reply_to_message_id is not None:
            target = self._messages.get((chat.id, reply_to_message_id))
            if target is None:
                raise AssertionError(f"message {reply_to_message_id} in chat {chat.id} does not exist")
            content["reply_to_message"] = _without_reply(target)
        msg = self._new_message(chat, user.user_dict(), content)
        return self._enqueue({"message": msg})

    def _enqueue(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self._push(_Queued(update["update_id"], update))
        return update

    def _push(self, entry: _Queued) -> None:
        kind = next(k for k in entry.update if k != "update_id")
        allowed = self._webhook.allowed_updates if self._webhook else self._allowed_updates
        if (kind in _OPT_IN_UPDATES and (not allowed or kind not in allowed)) or (allowed and kind not in allowed):
            self.counters["update_filtered"] += 1  # Telegram drops updates the bot did not ask for
            return
        if self._webhook is not None:
            self._spawn(self._deliver(self._webhook, entry.update))
        else:
            self._queue.append(entry)
            self._wake_pollers()

    def _wake_pollers(self) -> None:
        event = self._update_event
        self._update_event = asyncio.Event()
        event.set()

    async def _get_updates(self, p: _Params) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first",
            )
        offset = p.get_int("offset", "invalid offset") or 0
        limit = min(max(p.get_int("limit", "invalid limit") or 100, 1), 100)
        timeout = max(p.get_int("timeout", "invalid timeout") or 0, 0)
        allowed = p.get_json("allowed_updates", "can't parse allowed updates")
        if allowed is not None:
            self._allowed_updates = list(allowed) or None
        # A newer long poll terminates an older one, exactly like Telegram (409 for the old one).
        self._poll_seq += 1
        my_seq = self._poll_seq
        self._wake_pollers()
        self._confirm(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = [e for e in self._queue if e.update_id >= offset or (e.redelivery and not e.delivered)][:limit]
            if batch or self._closing.is_set():
                for e in batch:
                    e.delivered = True
                return [e.update for e in batch]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            event = self._update_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            if self._poll_seq != my_seq:
                raise ApiError(409, _DEFAULT_DESCRIPTIONS[409])
            if self._webhook is not None:
                return []

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._queue = self._queue[offset:]  # keep only the last -offset updates
        elif offset > 0:
            self._queue = [e for e in self._queue if e.update_id >= offset or (e.redelivery and not e.delivered)]

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, wh: _Webhook, update: dict[str, Any]) -> None:
        """POST one update to the webhook, retrying non-2xx; same-chat updates stay in order."""
        wh.pending += 1
        chat_key = _update_chat(update)
        lock = wh.chat_locks.setdefault(chat_key, asyncio.Lock())
        try:
            async with lock, wh.semaphore:
                headers = {"X-Telegram-Bot-Api-Secret-Token": wh.secret_token} if wh.secret_token else {}
                timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
                for attempt in range(self.webhook_retries + 1):
                    assert self._client is not None
                    try:
                        async with self._client.post(wh.url, json=update, headers=headers, timeout=timeout) as resp:
                            if 200 <= resp.status < 300:
                                self.counters["webhook_ok"] += 1
                                await self._webhook_reply(resp)
                                return
                            error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
                    except (aiohttp.ClientError, TimeoutError) as e:
                        error = f"Connection failed: {type(e).__name__}"
                    wh.last_error_date = int(time.time())
                    wh.last_error_message = error
                    self.counters["webhook_retry"] += 1
                    if attempt < self.webhook_retries:
                        await self._sleep(self.webhook_retry_delay * (attempt + 1))
                self.counters["webhook_failed"] += 1
                self.webhook_failures.append(update)
        finally:
            wh.pending -= 1

    async def _webhook_reply(self, resp: aiohttp.ClientResponse) -> None:
        """Execute a method returned in the webhook response body, as Telegram does."""
        if resp.content_type.startswith("multipart/"):
            values, uploads = await _read_multipart(aiohttp.MultipartReader(resp.headers, resp.content))
        elif resp.content_type == "application/json":
            try:
                data = await resp.json()
            except ValueError:
                return
            if not isinstance(data, dict):
                return
            values, uploads = data, {}
        else:
            return
        method = values.pop("method", None)
        entry = self._methods.get(str(method).lower()) if method else None
        if entry is None:
            return
        name, handler = entry
        self.method_calls[name] += 1
        params = _Params(values, uploads)
        try:
            result = handler(params)
            if asyncio.iscoroutine(result):
                await result
            self.counters["ok"] += 1
        except ApiError as e:
            self._error(e, name, params)

    # ------------------------------------------------------------------ method handlers

    def _get_me(self, p: _Params) -> dict[str, Any]:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_webhook(self, p: _Params) -> bool:
        url = p.get_str("url") or ""
        if not url:
            self._webhook = None
            return True
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            # Real Telegram requires https; http is allowed here so tests need no certificates.
            raise _bad("bad webhook: HTTPS url must be provided for webhook")
        secret = p.get_str("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        max_connections = p.get_int("max_connections", "invalid max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        allowed = p.get_json("allowed_updates", "can't parse allowed updates")
        if p.get_bool("drop_pending_updates"):
            self._queue.clear()
        self._webhook = _Webhook(
            url, secret or None, max_connections, list(allowed or []) or None, asyncio.Semaphore(max_connections)
        )
        pending, self._queue = self._queue, []
        for entry in pending:
            self._push(entry)
        self._wake_pollers()
        return True

    def _delete_webhook(self, p: _Params) -> bool:
        self._webhook = None
        if p.get_bool("drop_pending_updates"):
            self._queue.clear()
        return True

    def _get_webhook_info(self, p: _Params) -> dict[str, Any]:
        wh = self._webhook
        if wh is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._queue)}
        info: dict[str, Any] = {
            "url": wh.url,
            "has_custom_certificate": False,
            "pending_update_count": wh.pending,
            "max_connections": wh.max_connections,
        }
        if wh.last_error_date is not None:
            info["last_error_date"] = wh.last_error_date
            info["last_error_message"] = wh.last_error_message
        if wh.allowed_updates:
            info["allowed_updates"] = wh.allowed_updates
        return info

    def _send_message(self, p: _Params) -> dict[str, Any]:
        chat = self._chat(p)
        raw = p.get_str("text")
        if not raw:
            raise _bad("message text is empty")
        parse_mode = p.get_str("parse_mode")
        plain, entities = self._parse(raw, parse_mode, p, "entities")
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup, echo = self._markup(p)
        content: dict[str, Any] = {"text": plain}
        if entities:
            content["entities"] = entities
        return self._bot_send("sendMessage", p, chat, content, markup, echo, raw, parse_mode)

    def _send_photo(self, p: _Params) -> dict[str, Any]:
        chat = self._chat(p)
        photo = p.get_file("photo")
        if photo is None:
            raise _bad("there is no photo in the request")
        caption, caption_entities, raw, parse_mode = self._caption(p)
        markup, echo = self._markup(p)
        if isinstance(photo, _Upload):
            if not photo.data:
                raise _bad("file must be non-empty")
            stored = self._store_photo(photo.data, file_name=photo.filename)
        else:
            stored = self._file_ref(photo, "photo")
        content: dict[str, Any] = {"photo": stored.sizes}
        if caption:
            content["caption"] = caption
            if caption_entities:
                content["caption_entities"] = caption_entities
        return self._bot_send("sendPhoto", p, chat, content, markup, echo, raw, parse_mode, file=stored)

    def _send_document(self, p: _Params) -> dict[str, Any]:
        chat = self._chat(p)
        document = p.get_file("document")
        if document is None:
            raise _bad("there is no document in the request")
        caption, caption_entities, raw, parse_mode = self._caption(p)
        markup, echo = self._markup(p)
        if isinstance(document, _Upload):
            if not document.data:
                raise _bad("file must be non-empty")
            mime = document.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(document.filename)[0] or "application/octet-stream"
            stored = self._store_file(document.data, "document", file_name=document.filename, mime_type=mime)
        else:
            stored = self._file_ref(document, "document")
        content: dict[str, Any] = {"document": _document_dict(stored)}
        if caption:
            content["caption"] = caption
            if caption_entities:
                content["caption_entities"] = caption_entities
        return self._bot_send("sendDocument", p, chat, content, markup, echo, raw, parse_mode, file=stored)

    def _send_chat_action(self, p: _Params) -> bool:
        chat = self._chat(p)
        action = p.get_str("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self._record("sendChatAction", p, chat.id, text=action)
        return True

    def _edit_target(self, p: _Params, not_found: str) -> tuple[FakeChat, dict[str, Any]]:
        if p.get_str("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")  # the bot has no inline mode
        chat = self._chat(p)
        message_id = p.get_int("message_id", "message identifier is not specified")
        if message_id is None:
            raise _bad("message identifier is not specified")
        msg = self._messages.get((chat.id, message_id))
        if msg is None:
            raise _bad(not_found)
        if msg["from"]["id"] != BOT_ID:
            raise _bad("message can't be edited")
        return chat, msg

    def _edit_message_text(self, p: _Params) -> dict[str, Any]:
        chat, msg = self._edit_target(p, "message to edit not found")
        raw = p.get_str("text")
        if not raw:
            raise _bad("message text is empty")
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        parse_mode = p.get_str("parse_mode")
        plain, entities = self._parse(raw, parse_mode, p, "entities")
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise _bad("MESSAGE_TOO_LONG")
        _, echo = self._markup(p)
        if plain == msg["text"] and entities == msg.get("entities", []) and echo == msg.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        msg["text"] = plain
        _set_or_drop(msg, "entities", entities)
        return self._after_edit("editMessageText", p, chat, msg, echo, raw, parse_mode)

    def _edit_message_caption(self, p: _Params) -> dict[str, Any]:
        chat, msg = self._edit_target(p, "message to edit not found")
        if "photo" not in msg and "document" not in msg:
            raise _bad("there is no caption in the message to edit")
        caption, caption_entities, raw, parse_mode = self._caption(p)
        _, echo = self._markup(p)
        if (
            caption == msg.get("caption", "")
            and caption_entities == msg.get("caption_entities", [])
            and echo == msg.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED)
        _set_or_drop(msg, "caption", caption)
        _set_or_drop(msg, "caption_entities", caption_entities)
        return self._after_edit("editMessageCaption", p, chat, msg, echo, raw, parse_mode)

    def _edit_message_reply_markup(self, p: _Params) -> dict[str, Any]:
        chat, msg = self._edit_target(p, "message to edit not found")
        _, echo = self._markup(p)
        if echo == msg.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        return self._after_edit("editMessageReplyMarkup", p, chat, msg, echo, None, None)

    def _after_edit(
        self,
        method: str,
        p: _Params,
        chat: FakeChat,
        msg: dict[str, Any],
        echo: dict[str, Any] | None,
        raw: str | None,
        parse_mode: str | None,
    ) -> dict[str, Any]:
        # Telegram drops the inline keyboard when an edit does not pass reply_markup.
        _set_or_drop(msg, "reply_markup", echo)
        msg["edit_date"] = int(time.time())
        self._record(
            method,
            p,
            chat.id,
            message_id=msg["message_id"],
            text=msg.get("text", msg.get("caption")),
            html=raw,
            parse_mode=parse_mode,
            reply_markup=echo,
            message=dict(msg),
        )
        return dict(msg)

    def _delete_message(self, p: _Params) -> bool:
        chat = self._chat(p)
        message_id = p.get_int("message_id", "message identifier is not specified")
        if message_id is None:
            raise _bad("message identifier is not specified")
        if self._messages.pop((chat.id, message_id), None) is None:
            raise _bad("message to delete not found")
        self._record("deleteMessage", p, chat.id, message_id=message_id)
        return True

    def _answer_callback_query(self, p: _Params) -> bool:
        query_id = p.get_str("callback_query_id") or ""
        query = self._open_queries.pop(query_id, None)
        if query is None:
            raise ApiError(400, QUERY_TOO_OLD)
        text = p.get_str("text")
        if text is not None and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        message = query.get("message") or {}
        self._record("answerCallbackQuery", p, query["from"]["id"], message_id=message.get("message_id"), text=text)
        return True

    def _set_my_commands(self, p: _Params) -> bool:
        commands = p.get_json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        clean = []
        for c in commands:
            if not isinstance(c, dict):
                raise _bad("can't parse BotCommand")
            command = str(c.get("command", "")).removeprefix("/")
            description = str(c.get("description", ""))
            if not _COMMAND_NAME_RE.fullmatch(command):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        self.commands[self._commands_key(p)] = clean
        self._record("setMyCommands", p, None)
        return True

    def _get_my_commands(self, p: _Params) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(p), [])

    def _delete_my_commands(self, p: _Params) -> bool:
        self.commands.pop(self._commands_key(p), None)
        self._record("deleteMyCommands", p, None)
        return True

    def _commands_key(self, p: _Params) -> tuple[str, str]:
        scope = p.get_json("scope", "can't parse BotCommandScope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), p.get_str("language_code") or ""

    def _set_chat_menu_button(self, p: _Params) -> bool:
        chat_id = p.get_int("chat_id", "chat not found")
        if chat_id is not None and chat_id not in self.chats:
            raise _bad("chat not found")
        button = p.get_json("menu_button", "can't parse menu button JSON object") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("commands", "web_app", "default"):
            raise _bad("unsupported menu button type")
        self.menu_buttons[chat_id] = button
        self._record("setChatMenuButton", p, chat_id)
        return True

    def _get_chat_menu_button(self, p: _Params) -> dict[str, Any]:
        chat_id = p.get_int("chat_id", "chat not found")
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "commands"}
        return {"type": "commands"} if button.get("type") == "default" else button

    def _get_file(self, p: _Params) -> dict[str, Any]:
        stored = self._files.get(p.get_str("file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > 20 * 1024 * 1024:
            raise _bad("file is too big")
        return stored.file_dict()

    # ------------------------------------------------------------------ helpers

    def _require_user(self, user_id: int) -> FakeChat:
        chat = self.chats.get(user_id)
        if chat is None or chat.type != "private":
            raise AssertionError(f"user {user_id} is not registered; call fake.user({user_id}) first")
        return chat

    def _unblock_on_activity(self, user: FakeChat) -> None:
        # A user who blocked the bot must unblock ("Restart") before they can write to it.
        user.blocked = False

    def _chat(self, p: _Params) -> FakeChat:
        raw = p.values.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        try:
            chat = self.chats.get(int(raw))
        except (TypeError, ValueError):
            chat = None  # "@username" only works for public channels/supergroups
        if chat is None:
            raise _bad("chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _parse(
        self, raw: str, parse_mode: str | None, p: _Params, entities_field: str
    ) -> tuple[str, list[dict[str, Any]]]:
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                plain, entities = parse_html(raw, strict_amp=self.strict_amp)
            except HtmlParseError as e:
                raise _bad(f"can't parse entities: {e}") from None
            return plain, finalize_entities(entities)
        if mode in ("markdown", "markdownv2"):
            return raw, []  # not validated: the project sends HTML only
        if mode:
            raise _bad(f"unsupported parse_mode {parse_mode}")
        given = p.get_json(entities_field, "can't parse entities JSON object")
        return raw, list(given or [])

    def _caption(self, p: _Params) -> tuple[str, list[dict[str, Any]], str | None, str | None]:
        raw = p.get_str("caption")
        parse_mode = p.get_str("parse_mode")
        if not raw:
            return "", [], raw, parse_mode
        plain, entities = self._parse(raw, parse_mode, p, "caption_entities")
        if utf16_len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        return plain, entities, raw, parse_mode

    def _markup(self, p: _Params) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Validate reply_markup; return (markup, what Telegram echoes in the Message)."""
        bad_json = "can't parse reply keyboard markup JSON object"
        markup = p.get_json("reply_markup", bad_json)
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise _bad(bad_json)
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButtons must be an array")
            if sum(len(r) for r in rows) > MAX_BUTTONS:
                raise _bad("reply markup is too long")
            for row in rows:
                for button in row:
                    _check_inline_button(button)
            return markup, markup  # only inline keyboards are echoed back
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("can't parse keyboard button: KeyboardButtons must be an array")
            if sum(len(r) for r in rows) > MAX_BUTTONS:
                raise _bad("reply markup is too long")
            return markup, None
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup, None
        raise _bad(bad_json)

    def _reply_to(self, p: _Params, chat: FakeChat) -> dict[str, Any] | None:
        params = p.get_json("reply_parameters", "can't parse reply parameters JSON object")
        if isinstance(params, dict):
            message_id = params.get("message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            message_id = p.get_int("reply_to_message_id", "invalid reply_to_message_id")
            allow = p.get_bool("allow_sending_without_reply")
        if message_id is None:
            return None
        target = self._messages.get((chat.id, int(message_id)))
        if target is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return _without_reply(target)

    def _check_rate(self, chat: FakeChat, now: float) -> None:
        limits = self.limits
        if chat.type == "private":
            per, window = limits.per_chat_per_second, 1.0
        else:
            per, window = limits.group_per_minute, 60.0
        if per:
            w = self._chat_windows.get(chat.id)
            if w is not None:
                while w and w[0] <= now - window:
                    w.popleft()
                if len(w) >= per:
                    self._rate_limited(w[0] + window - now)
        if limits.global_per_second:
            g = self._global_window
            while g and g[0] <= now - 1.0:
                g.popleft()
            if len(g) >= limits.global_per_second:
                self._rate_limited(g[0] + 1.0 - now)

    def _rate_limited(self, wait: float) -> None:
        self.counters["rate_limited"] += 1
        raise _too_many(max(1, math.ceil(wait)))

    def _note_send(self, chat: FakeChat, now: float) -> None:
        self._chat_windows.setdefault(chat.id, deque()).append(now)
        self._global_window.append(now)

    def _bot_send(
        self,
        method: str,
        p: _Params,
        chat: FakeChat,
        content: dict[str, Any],
        markup: dict[str, Any] | None,
        echo: dict[str, Any] | None,
        raw: str | None,
        parse_mode: str | None,
        *,
        file: _StoredFile | None = None,
    ) -> dict[str, Any]:
        reply = self._reply_to(p, chat)
        if self.limits.enabled:
            now = time.monotonic()
            self._check_rate(chat, now)  # after validation: 400s are deterministic
            self._note_send(chat, now)
        if reply is not None:
            content["reply_to_message"] = reply
        if echo is not None:
            content["reply_markup"] = echo
        msg = self._new_message(chat, BOT_USER, content)
        self._record(
            method,
            p,
            chat.id,
            message_id=msg["message_id"],
            text=content.get("text", content.get("caption")),
            html=raw,
            parse_mode=parse_mode,
            reply_markup=markup,
            file_name=file.file_name if file else None,
            file_bytes=file.data if file else None,
            mime_type=file.mime_type if file else None,
            message=msg,
        )
        return msg

    def _new_message(self, chat: FakeChat, sender: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        # Message ids are per chat in private chats and groups, shared by both sides.
        message_id = self._next_message_id.get(chat.id, 0) + 1
        self._next_message_id[chat.id] = message_id
        msg = {"message_id": message_id, "from": sender, "chat": chat.chat_dict(), "date": int(time.time())}
        msg.update(content)
        self._messages[(chat.id, message_id)] = msg
        return msg

    def _record(self, method: str, p: _Params, chat_id: int | None, **fields: Any) -> SentRecord:
        rec = SentRecord(len(self.sent) + 1, method, chat_id, params=p.values, time=time.time(), **fields)
        self.sent.append(rec)
        event = self._sent_event
        self._sent_event = asyncio.Event()
        event.set()
        if self.record_dir is not None and (method in SEND_METHODS or method in EDIT_METHODS):
            self._write_record(rec)
        return rec

    def _store_file(
        self, data: bytes, kind: str, *, file_name: str | None = None, mime_type: str | None = None
    ) -> _StoredFile:
        n = next(self._file_counter)
        ext = Path(file_name).suffix if file_name else ".jpg" if kind == "photo" else ""
        folder = "photos" if kind == "photo" else "documents"
        stored = _StoredFile(
            file_id=f"{'AgAC' if kind == 'photo' else 'BQAC'}fake{n:08d}",
            file_unique_id=f"AQADfake{n:08d}",
            file_path=f"{folder}/file_{n}{ext}",
            data=data,
            file_name=file_name,
            mime_type=mime_type or ("image/jpeg" if kind == "photo" else None),
            kind=kind,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes, file_name: str | None = None) -> _StoredFile:
        small = self._store_file(data, "photo")
        big = self._store_file(data, "photo", file_name=file_name)
        sizes = [
            {
                "file_id": small.file_id,
                "file_unique_id": small.file_unique_id,
                "width": 90,
                "height": 68,
                "file_size": len(data),
            },
            {
                "file_id": big.file_id,
                "file_unique_id": big.file_unique_id,
                "width": 800,
                "height": 600,
                "file_size": len(data),
            },
        ]
        small.sizes = big.sizes = sizes
        return big

    def _file_ref(self, ref: str, kind: str) -> _StoredFile:
        stored = self._files.get(ref)
        if stored is not None:
            if kind == "photo" and stored.sizes is None:
                raise _bad("type of file mismatch: can't use file of type Document as Photo")
            return stored
        if urllib.parse.urlsplit(ref).scheme in ("http", "https"):
            # Telegram would download the URL; offline we keep an empty placeholder.
            if kind == "photo":
                return self._store_photo(b"", file_name=None)
            return self._store_file(b"", kind, file_name=Path(urllib.parse.urlsplit(ref).path).name or "file")
        raise _bad("wrong file identifier/HTTP URL specified")

    def _message_ref(self, user_id: int, message: Any) -> tuple[int, int]:
        if isinstance(message, int):
            return user_id, message
        if isinstance(message, SentRecord):
            if message.chat_id is None or message.message_id is None:
                raise AssertionError(f"record #{message.seq} ({message.method}) is not a message")
            return message.chat_id, message.message_id
        if isinstance(message, dict):
            return int(message["chat"]["id"]), int(message["message_id"])
        return int(message.chat.id), int(message.message_id)  # aiogram Message

    def _write_record(self, rec: SentRecord) -> None:
        """Write one outgoing message to record_dir and refresh index.html (offline demo)."""
        assert self.record_dir is not None
        self.record_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{rec.seq:05d}_{rec.method}_{rec.chat_id}"
        links: list[str] = []
        if rec.html is not None or rec.text is not None:
            (self.record_dir / f"{stem}.html").write_text(rec.html or html.escape(rec.text or ""), encoding="utf-8")
            (self.record_dir / f"{stem}.txt").write_text(rec.text or "", encoding="utf-8")
            links.append(f"{stem}.html")
        if rec.file_bytes is not None and rec.method in SEND_METHODS:
            name = f"{rec.seq:05d}_{_UNSAFE_NAME.sub('_', Path(rec.file_name or 'photo.jpg').name)}"
            (self.record_dir / name).write_bytes(rec.file_bytes)
            links.append(name)
        buttons = ", ".join(
            b.get("text", "") for row in (rec.reply_markup or {}).get("inline_keyboard", []) for b in row
        )
        cells = [
            str(rec.seq),
            time.strftime("%H:%M:%S", time.localtime(rec.time)),
            html.escape(rec.method),
            html.escape(str(rec.chat_id)),
            f"<pre>{html.escape(rec.text or '')}</pre>",
            html.escape(buttons),
            " ".join(
                f'<a href="{html.escape(urllib.parse.quote(link), quote=True)}">{html.escape(link)}</a>'
                for link in links
            ),
        ]
        self._index_rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        page = (
            '<!doctype html>\n<meta charset="utf-8"><title>Qingshui outgoing messages</title>\n'
            "<table border=1 cellpadding=4>\n<tr><th>#</th><th>time</th><th>method</th><th>chat</th>"
            "<th>text</th><th>buttons</th><th>files</th></tr>\n" + "\n".join(self._index_rows) + "\n</table>\n"
        )
        (self.record_dir / "index.html").write_text(page, encoding="utf-8")


def _method_set(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.lower() for m in methods)


def _fault_error(status: int, retry_after: int | None, description: str | None) -> ApiError:
    if status == 429:
        return _too_many(retry_after or 1)
    return ApiError(status, description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}"))


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad("can't parse inline keyboard button: Text must be present in InlineKeyboardButton")
    if "callback_data" in button:
        size = len(str(button["callback_data"]).encode("utf-8"))
        if size == 0 or size > MAX_CALLBACK_DATA:
            raise _bad("BUTTON_DATA_INVALID")
    elif "url" in button:
        url = str(button["url"])
        if urllib.parse.urlsplit(url).scheme not in ("http", "https", "tg") or len(url) > 2048:
            raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    elif not any(k in button for k in _INLINE_ACTIONS):
        raise _bad("text buttons are unallowed in the inline keyboard")


def _document_dict(stored: _StoredFile) -> dict[str, Any]:
    d: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
    }
    if stored.file_name:
        d["file_name"] = stored.file_name
    if stored.mime_type:
        d["mime_type"] = stored.mime_type
    return d


def _without_reply(msg: dict[str, Any]) -> dict[str, Any]:
    # Telegram never nests reply_to_message more than one level deep.
    return {k: v for k, v in msg.items() if k != "reply_to_message"}


def _set_or_drop(d: dict[str, Any], key: str, value: Any) -> None:
    if value:
        d[key] = value
    else:
        d.pop(key, None)


def _update_chat(update: dict[str, Any]) -> Any:
    for key in ("message", "edited_message", "callback_query"):
        body = update.get(key)
        if isinstance(body, dict):
            if key == "callback_query":
                return ("user", body.get("from", {}).get("id"))
            return body.get("chat", {}).get("id")
    return None


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "None"
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"
