"""Fake WeCom, DingTalk and Feishu robots on 127.0.0.1 (aiohttp), and a virtual clock for the sender.

Each fake checks what the real robot checks — its key or token, the signature when it has a secret,
message sizes, its rate limit over a sliding window — and answers with the real error codes past
them (WeCom 93000 / 45009 / 40058, DingTalk 300001 / 310000 / 130101 and a 10-minute block, Feishu
19001 / 19021 / 11232 / 9499). Every message accepted is kept in `received`, in order."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


class VirtualTime:
    """A monotonic clock that moves only when the sender sleeps; `now()` the matching wall time."""

    def __init__(self, start: dt.datetime) -> None:
        self.start, self.seconds = start, 0.0

    def monotonic(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        self.seconds += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.seconds)


class FakeRobot:
    """What every fake shares: the limits, the record of messages and of the errors it answered."""

    kind = ""
    limits: tuple[tuple[int, float], ...] = ()

    def __init__(self, clock: VirtualTime, *, token: str = "robot-key-0001", secret: str = "") -> None:
        self.clock, self.token, self.secret = clock, token, secret
        self.received: list[dict[str, Any]] = []
        self.errors: list[int] = []
        self.sends: deque[float] = deque()
        self.url = ""

    def over_limit(self) -> bool:
        """One more send now would break a window (counted whether or not it is accepted)."""
        now = self.clock.monotonic()
        over = any(sum(1 for t in self.sends if t > now - seconds) >= count for count, seconds in self.limits)
        self.sends.append(now)
        return over

    def error(self, code: int, message: str, field: str = "errcode", text: str = "errmsg") -> web.Response:
        self.errors.append(code)
        return web.json_response({field: code, text: message})

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError


class FakeWeCom(FakeRobot):
    kind = "wecom"
    limits = ((20, 60.0),)

    def __init__(self, clock: VirtualTime, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.uploads: dict[str, tuple[str, bytes]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/cgi-bin/webhook/send", self.send), web.post("/cgi-bin/webhook/upload_media", self.upload)]

    async def upload(self, request: web.Request) -> web.Response:
        if request.query.get("key") != self.token:
            return self.error(93000, "invalid webhook url")
        form = await request.post()
        media = form.get("media")
        if not isinstance(media, web.FileField):
            return self.error(40006, "invalid media size")
        data = media.file.read()
        media_id = f"media-{len(self.uploads) + 1}"
        self.uploads[media_id] = (media.filename, data)
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": "file", "media_id": media_id})

    async def send(self, request: web.Request) -> web.Response:
        if request.query.get("key") != self.token:
            return self.error(93000, "invalid webhook url, hint: key is wrong")
        if self.over_limit():
            return self.error(45009, "api freq out of limit")
        body = await request.json()
        msgtype = body.get("msgtype")
        if msgtype == "markdown":
            if len(body["markdown"]["content"].encode()) > 4096:
                return self.error(40058, "markdown.content exceed max length 4096")
        elif msgtype == "image":
            data = base64.b64decode(body["image"]["base64"])
            if len(data) > 2 * 1024 * 1024 or hashlib.md5(data).hexdigest() != body["image"]["md5"]:
                return self.error(40009, "invalid image size or md5")
            body["image"]["bytes"] = data
        elif msgtype == "file":
            if body["file"]["media_id"] not in self.uploads:
                return self.error(40007, "invalid media_id")
            body["file"]["filename"], body["file"]["bytes"] = self.uploads[body["file"]["media_id"]]
        else:
            return self.error(40008, "invalid message type")
        self.received.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class FakeDingTalk(FakeRobot):
    kind = "dingtalk"
    limits = ((20, 60.0),)

    def __init__(self, clock: VirtualTime, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.blocked_until = -1.0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/robot/send", self.send)]

    async def send(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("access_token") != self.token:
            return self.error(300001, "token is not exist")
        if self.secret:
            stamp = query.get("timestamp", "0")
            expected = base64.b64encode(hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(),
                                                 hashlib.sha256).digest()).decode()
            # aiohttp has decoded the URL once, as DingTalk does
            if query.get("sign") != expected or abs(time.time() * 1000 - int(stamp)) > 3_600_000:
                return self.error(310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]")
        now = self.clock.monotonic()
        if now < self.blocked_until:
            return self.error(130101, "send too fast, exceed 20 times per minute")
        if self.over_limit():
            self.blocked_until = now + 600.0  # DingTalk: ten minutes of silence
            return self.error(130101, "send too fast, exceed 20 times per minute")
        body = await request.json()
        if body.get("msgtype") != "markdown" or len(body["markdown"]["text"].encode()) > 20000:
            return self.error(40035, "缺少参数 markdown")
        self.received.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class FakeFeishu(FakeRobot):
    kind = "feishu"
    limits = ((5, 1.0), (100, 60.0))

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/open-apis/bot/v2/hook/{token}", self.send)]

    def fail(self, code: int, message: str) -> web.Response:
        return self.error(code, message, field="code", text="msg")

    async def send(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self.fail(19001, "param invalid: incoming webhook access token invalid")
        raw = await request.read()
        if len(raw) > 20 * 1024:
            return self.fail(9499, "Bad Request: request body too large")
        body = json.loads(raw)
        if self.secret:
            stamp = int(body.get("timestamp", "0"))
            key = f"{stamp}\n{self.secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if body.get("sign") != expected or abs(time.time() - stamp) > 3600:
                return self.fail(19021, "sign match fail or timestamp is not within one hour from current time")
        if self.over_limit():
            return self.fail(11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]")
        if body.get("msg_type") not in ("interactive", "post", "text"):
            return self.fail(9499, "Bad Request")
        self.received.append(body)
        return web.json_response({"code": 0, "msg": "success", "data": {}})


@asynccontextmanager
async def serving(*robots: FakeRobot) -> AsyncIterator[None]:
    """Serve each robot on its own 127.0.0.1 port and set its webhook `url`."""
    runners = []
    try:
        for robot in robots:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.add_routes(robot.routes())
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            base = f"http://127.0.0.1:{port}"
            robot.url = {
                "wecom": f"{base}/cgi-bin/webhook/send?key={robot.token}",
                "dingtalk": f"{base}/robot/send?access_token={robot.token}",
                "feishu": f"{base}/open-apis/bot/v2/hook/{robot.token}",
            }[robot.kind]
            runners.append(runner)
        yield
    finally:
        for runner in runners:
            await runner.cleanup()


def markdown_of(robot: FakeRobot, body: dict[str, Any]) -> str:
    """The text of one accepted message."""
    if robot.kind == "wecom":
        return str(body.get("markdown", {}).get("content", ""))
    if robot.kind == "dingtalk":
        return str(body["markdown"]["text"])
    return str(body["card"]["elements"][0]["content"])


__all__ = ["FakeDingTalk", "FakeFeishu", "FakeRobot", "FakeWeCom", "VirtualTime", "markdown_of", "serving"]
