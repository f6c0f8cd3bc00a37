"""The test-facing user simulation: users and groups, what they send and press, and
the inspection helpers tests wait on (messages_to, wait_for, wait_idle, log_tail)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from bot.demo.fake_telegram.api import _COMMAND_RE, DEFAULT_PHOTO, SEND_METHODS, FakeChat, SentRecord, _Queued
from bot.demo.fake_telegram.files import _document_dict
from bot.demo.fake_telegram.html_check import utf16_len
from bot.demo.fake_telegram.messages import _without_reply


class UserSimulationMixin:
    """A part of FakeTelegram (server.py), which holds the state these methods use."""

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

    def _require_user(self, user_id: int) -> FakeChat:
        chat = self.chats.get(user_id)
        if chat is None or chat.type != "private":
            raise AssertionError(f"user {user_id} is not registered; call fake.user({user_id}) first")
        return chat

    def _unblock_on_activity(self, user: FakeChat) -> None:
        # A user who blocked the bot must unblock ("Restart") before they can write to it.
        user.blocked = False

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


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "None"
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"
