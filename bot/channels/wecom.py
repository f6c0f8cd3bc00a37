"""WeCom (企业微信) group robot: markdown (≤ 4,096 bytes a message), the chart as an image message
(base64 and md5 of at most 2 MB), the workbook as a file message uploaded first through the robot's
`upload_media` on the same host and key. 20 messages a minute per robot; 45009 means too fast."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import urllib.parse
from typing import Any

import aiohttp

from bot.channels.base import Codes, Delivery, Outcome, Target, post_json

KIND = "wecom"
LIMITS = ((19, 60.0),)  # WeCom allows 20 a minute; one to spare, since reaching it loses a minute
TEXT_BYTES = 4096
IMAGE_BYTES = 2 * 1024 * 1024
FILE_BYTES = 20 * 1024 * 1024
FILES = True
CODES = Codes(too_fast={45009: 60.0}, bad_settings=frozenset({93000, 93004, 40001, 40014, 42001}))


def upload_url(webhook: str) -> str:
    """The robot's upload_media address: the same host and key as its webhook."""
    parts = urllib.parse.urlsplit(webhook)
    key = urllib.parse.parse_qs(parts.query).get("key", [""])[0]
    query = urllib.parse.urlencode({"key": key, "type": "file"})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/cgi-bin/webhook/upload_media", query, ""))


async def deliver(channel: Target, method: str, payload: dict[str, Any], ctx: Delivery) -> Outcome:
    body: dict[str, Any]
    if method == "markdown":
        text = payload["text"]
        if len(text.encode()) > TEXT_BYTES:
            return Outcome.dead(f"markdown over {TEXT_BYTES} bytes")
        body = {"msgtype": "markdown", "markdown": {"content": text}}
    elif method == "image":
        try:
            data = await asyncio.to_thread(ctx.file(payload["path"]).read_bytes)  # off the loop the chat uses
        except OSError as exc:  # as e-mail: a file gone does not come back by retrying
            return Outcome.dead(f"file not found: {exc}")
        if len(data) > IMAGE_BYTES:
            return Outcome.dead("image over 2 MB")
        body = {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode(),
                                              "md5": hashlib.md5(data).hexdigest()}}
    elif method == "file":
        path = ctx.file(payload["path"])
        try:
            content = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            return Outcome.dead(f"file not found: {exc}")
        if len(content) > FILE_BYTES:
            return Outcome.dead("file over 20 MB")
        form = aiohttp.FormData()
        form.add_field("media", content, filename=payload.get("filename") or path.name,
                       content_type="application/octet-stream")
        outcome, answer = await post_json(ctx, upload_url(channel.target), None, CODES, data=form)
        if outcome.state != "sent":
            return outcome
        media_id = answer.get("media_id")
        if not media_id:
            return Outcome.retry("upload_media answered without media_id")
        body = {"msgtype": "file", "file": {"media_id": media_id}}
    else:
        return Outcome.dead(f"WeCom cannot send {method!r}")
    outcome, _ = await post_json(ctx, channel.target, body, CODES)
    return outcome
