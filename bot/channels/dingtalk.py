"""DingTalk (钉钉) custom robot: markdown only (no images or files: the text says where the chart and
workbook are). With a secret, every request is signed (加签): timestamp in milliseconds + "\\n" + secret,
HmacSHA256 keyed by the secret, base64, URL-encoded, added as `&timestamp=…&sign=…`. 20 messages a
minute; past it DingTalk answers 130101 and blocks the robot for 10 minutes, so the pace never gets there."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import Any

from bot.channels.base import Codes, Delivery, Outcome, Target, post_json

KIND = "dingtalk"
LIMITS = ((19, 60.0),)  # DingTalk allows 20 a minute and then blocks for 10 minutes: one to spare
TEXT_BYTES = 20000
FILES = False
BLOCKED_SECONDS = 600.0
CODES = Codes(too_fast={130101: BLOCKED_SECONDS}, bad_settings=frozenset({310000, 300001, 300005, 400101}))


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签, URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    if not secret:
        return webhook
    joiner = "&" if "?" in webhook else "?"
    return f"{webhook}{joiner}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


async def deliver(channel: Target, method: str, payload: dict[str, Any], ctx: Delivery) -> Outcome:
    if method != "markdown":
        return Outcome.dead(f"DingTalk cannot send {method!r}")
    text = payload["text"]
    if len(text.encode()) > TEXT_BYTES:
        return Outcome.dead(f"markdown over {TEXT_BYTES} bytes")
    body = {"msgtype": "markdown", "markdown": {"title": payload.get("title") or text[:20], "text": text}}
    url = signed_url(channel.target, channel.secret, int(ctx.wall() * 1000))
    outcome, _ = await post_json(ctx, url, body, CODES)
    return outcome
