"""Updates: the queue, long polling (getUpdates, with Telegram's 409 for an older poll) and
the webhook (setWebhook, deleteWebhook, getWebhookInfo, delivery with retries, a method in the reply)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import Awaitable
from typing import Any

import aiohttp

from bot.demo.fake_telegram.api import (
    _DEFAULT_DESCRIPTIONS,
    _OPT_IN_UPDATES,
    _SECRET_RE,
    ApiError,
    _bad,
    _Params,
    _Queued,
    _read_multipart,
    _Webhook,
)


class UpdatesMixin:
    """A part of FakeTelegram (server.py), which holds the state these methods use."""

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


def _update_chat(update: dict[str, Any]) -> Any:
    for key in ("message", "edited_message", "callback_query"):
        body = update.get(key)
        if isinstance(body, dict):
            if key == "callback_query":
                return ("user", body.get("from", {}).get("id"))
            return body.get("chat", {}).get("id")
    return None
