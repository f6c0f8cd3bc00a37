"""What every channel kind shares: the channel as a sender sees it, a delivery's outcome, the robots'
HTTP answer handling and splitting text under a byte limit (README "Channels").

A kind's module (wecom, dingtalk, feishu, email) has `KIND`, `LIMITS` (its pace: at most N sends in
any W seconds, each pair a sliding window), `TEXT_BYTES` (the most one text message may hold),
`FILES` (whether it takes the chart and the workbook itself) and
`async def deliver(channel, method, payload, ctx) -> Outcome`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

KINDS = ("wecom", "dingtalk", "feishu", "email")
SENDS = ("digest", "alerts", "reminders")
REQUEST_SECONDS = 30.0


@dataclass(frozen=True)
class Target:
    """A channel row, detached from any session."""

    id: int
    name: str
    kind: str
    target: str
    secret: str = ""


@dataclass(frozen=True)
class Outcome:
    """sent; wait (the robot said "too fast": try again after `seconds`, not a failed attempt);
    dead (never sent: `reason`; `tell_admins` when the channel's own settings are wrong);
    retry (network, 5xx: back off, a failed attempt)."""

    state: str
    reason: str = ""
    seconds: float = 0.0
    tell_admins: bool = False

    @classmethod
    def sent(cls, answer: str = "ok") -> Outcome:
        return cls("sent", reason=answer)

    @classmethod
    def retry_after(cls, seconds: float, reason: str) -> Outcome:
        return cls("wait", reason=reason, seconds=seconds)

    @classmethod
    def dead(cls, reason: str, *, tell_admins: bool = False) -> Outcome:
        return cls("dead", reason=reason, tell_admins=tell_admins)

    @classmethod
    def retry(cls, error: str) -> Outcome:
        return cls("retry", reason=error)


@dataclass
class Delivery:
    """What a kind needs besides the channel and the message: an HTTP session, where files live, the
    SMTP settings, the wall clock (signatures carry a timestamp the robot checks)."""

    http: aiohttp.ClientSession
    data_dir: Path
    smtp_url: str | None = None
    smtp_from: str | None = None
    wall: Callable[[], float] = time.time

    def file(self, relative: str) -> Path:
        return self.data_dir / relative


@dataclass(frozen=True)
class Codes:
    """How a robot's `errcode` (or `code`) reads: too fast (wait how long), bad settings, busy."""

    too_fast: dict[int, float]
    bad_settings: frozenset[int]
    busy: frozenset[int] = frozenset({-1})


async def post_json(
    ctx: Delivery, url: str, body: Any, codes: Codes, *, code_field: str = "errcode", message_field: str = "errmsg",
    data: aiohttp.FormData | None = None,
) -> tuple[Outcome, dict[str, Any]]:
    """POST to a robot and read its answer as an Outcome (with the answer's JSON for the caller)."""
    try:
        timeout = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
        async with ctx.http.post(url, timeout=timeout, **kwargs) as response:
            status = response.status
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            headers = response.headers
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        text = str(exc)  # it can hold the URL, key and all (aiohttp's InvalidURL is the URL)
        for shown in (url, url.split("?", 1)[0]):
            text = text.replace(shown, mask_target("robot", shown))
        return Outcome.retry(f"{type(exc).__name__}: {text}"), {}
    code = answer.get(code_field, answer.get("StatusCode", answer.get("code")))
    message = str(answer.get(message_field, answer.get("msg", answer.get("StatusMessage", ""))))
    reason = f"{code} {message}".strip() if code is not None else f"HTTP {status}"
    if status == 429 or (isinstance(code, int) and code in codes.too_fast):
        wait = _header_seconds(headers) or codes.too_fast.get(code if isinstance(code, int) else 0, 60.0)
        return Outcome.retry_after(wait, reason), answer
    if status >= 500 or (isinstance(code, int) and code in codes.busy):
        return Outcome.retry(reason), answer
    if status == 200 and code in (0, None) and answer:
        return Outcome.sent(reason), answer
    bad = (isinstance(code, int) and code in codes.bad_settings) or status in (401, 403, 404)
    return Outcome.dead(reason, tell_admins=bad), answer


def _header_seconds(headers: Any) -> float | None:
    for name in ("Retry-After", "x-ogw-ratelimit-reset"):
        value = headers.get(name)
        if value:
            try:
                return max(1.0, float(value))
            except ValueError:
                continue
    return None


def split_bytes(text: str, limit: int) -> list[str]:
    """`text` in parts of at most `limit` bytes (UTF-8), cut between paragraphs, else between lines,
    else between characters; no part empty."""
    parts: list[str] = []
    current = ""
    for block in _pieces(text.strip("\n").split("\n\n"), "\n\n", limit):
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = block
    if current:
        parts.append(current)
    return parts


def _pieces(blocks: Iterable[str], joiner: str, limit: int) -> list[str]:
    """Blocks no longer than `limit` bytes: a longer paragraph is cut at lines, a longer line at characters."""
    out: list[str] = []
    for block in blocks:
        if len(block.encode()) <= limit:
            out.append(block)
        elif joiner == "\n\n":
            out += _merge(_pieces(block.split("\n"), "\n", limit), "\n", limit)
        else:
            chunk = ""
            for char in block:
                if len((chunk + char).encode()) > limit:
                    out.append(chunk)
                    chunk = ""
                chunk += char
            if chunk:
                out.append(chunk)
    return [b for b in out if b.strip()]


def _merge(lines: list[str], joiner: str, limit: int) -> list[str]:
    merged: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}{joiner}{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
        else:
            merged.append(current)
            current = line
    if current:
        merged.append(current)
    return merged


KEY_LIKE = 16  # a path segment longer than this may be a key, even beside a query


def mask_target(kind: str, target: str) -> str:
    """A webhook URL with every query value and its last path segment (where the robots keep their keys:
    in the query or, Feishu's, at the end of the path) hidden but for their last four characters; e-mail
    addresses as they are."""
    if kind == "email":
        return target
    parts = urlsplit(target)
    segments = parts.path.split("/")
    last = max((i for i, part in enumerate(segments) if part), default=None)
    if last is not None and (not parts.query or len(segments[last]) > KEY_LIKE):  # `…/send?key=…` stays readable
        segments[last] = _masked(segments[last])
    query = "&".join(f"{name}{sep}{_masked(value) if sep else ''}"
                     for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item))
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), query, ""))


def _masked(secret: str) -> str:
    return f"…{secret[-4:]}" if len(secret) > 4 else "…"
