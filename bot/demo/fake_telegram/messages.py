"""Messages and edits: sendMessage, sendPhoto, sendDocument, sendChatAction, the three edits,
deleteMessage and answerCallbackQuery, validated as Telegram does (entities, lengths, keyboards, replies)."""

from __future__ import annotations

import asyncio
import mimetypes
import time
import urllib.parse
from typing import Any

from bot.demo.fake_telegram.api import (
    _CHAT_ACTIONS,
    _INLINE_ACTIONS,
    BOT_ID,
    BOT_USER,
    EDIT_METHODS,
    MAX_BUTTONS,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_TEXT,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    SEND_METHODS,
    ApiError,
    FakeChat,
    SentRecord,
    _bad,
    _Params,
    _StoredFile,
    _Upload,
)
from bot.demo.fake_telegram.files import _document_dict
from bot.demo.fake_telegram.html_check import HtmlParseError, finalize_entities, parse_html, utf16_len


class MessagesMixin:
    """A part of FakeTelegram (server.py), which holds the state these methods use."""

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


def _without_reply(msg: dict[str, Any]) -> dict[str, Any]:
    # Telegram never nests reply_to_message more than one level deep.
    return {k: v for k, v in msg.items() if k != "reply_to_message"}


def _set_or_drop(d: dict[str, Any], key: str, value: Any) -> None:
    if value:
        d[key] = value
    else:
        d.pop(key, None)
