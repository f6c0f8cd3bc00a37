"""Feishu (飞书) custom bot: an interactive card holding the markdown (a custom bot cannot upload images
or files: the text says where the chart and workbook are). With a secret, the body carries `timestamp`
(seconds) and `sign`: HmacSHA256 keyed by timestamp + "\\n" + secret over an empty message, base64.
A request body is at most 20 KB; 5 requests a second and 100 a minute per bot (11232: too fast)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from bot.channels.base import Codes, Delivery, Outcome, Target, post_json

KIND = "feishu"
LIMITS = ((4, 1.0), (95, 60.0))  # Feishu allows 5 a second and 100 a minute: room to spare in both
BODY_BYTES = 20 * 1024
TEXT_BYTES = 16000  # the markdown of one card, leaving room for the card around it under BODY_BYTES
FILES = False
CODES = Codes(too_fast={11232: 60.0, 99991400: 60.0},
              bad_settings=frozenset({19001, 19021, 19022, 19024}))


def sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def card(title: str, text: str) -> dict[str, Any]:
    return {"config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": title}, "template": "blue"},
            "elements": [{"tag": "markdown", "content": text}]}


async def deliver(channel: Target, method: str, payload: dict[str, Any], ctx: Delivery) -> Outcome:
    if method != "markdown":
        return Outcome.dead(f"Feishu cannot send {method!r}")
    body: dict[str, Any] = {"msg_type": "interactive",
                            "card": card(payload.get("title") or "清水", payload["text"])}
    if channel.secret:
        timestamp = int(ctx.wall())
        body = {"timestamp": str(timestamp), "sign": sign(channel.secret, timestamp), **body}
    if len(json.dumps(body, ensure_ascii=False).encode()) > BODY_BYTES:
        return Outcome.dead(f"request body over {BODY_BYTES} bytes")
    outcome, _ = await post_json(ctx, channel.target, body, CODES, code_field="code", message_field="msg")
    return outcome
