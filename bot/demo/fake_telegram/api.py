"""The fake Bot API's vocabulary: limits and error texts as Telegram words them, ApiError, the records
tests read (SentRecord, FakeChat, Rejection, RateLimits) and the request parameters with typed getters."""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
from aiohttp import hdrs

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
