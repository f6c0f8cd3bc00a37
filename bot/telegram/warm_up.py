"""What the first updates after a start would otherwise build while people wait, built before polling.

A fresh process builds on first use: aiogram's models for an update and for an answer (bot.telegram.
lazy_aiogram defers them from import to first use), the chat's templates (compiled once per language and
file) and the report parser's pattern. Together about half a second of CPU (bench/burst.py: the first
answer after a restart came 0.5 s late, and under a crowd every first answer after it). `warm_up()`
builds them once at start, before the first getUpdates; the memory is what the first update would take
anyway. Nothing here reads or writes the database or talks to Telegram."""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.domain.report_parser import parse_report
from bot.texts import LANGUAGES, module_of, templates_dir

log = logging.getLogger(__name__)

# not read in chat: the command line's, the robots', the cockpit's and the bulletin's texts
NOT_CHAT = ("cli_", "channel_", "web_", "demo_", "bulletin")

_USER: dict[str, Any] = {"id": 1, "is_bot": False, "first_name": "warm-up", "language_code": "zh-hans"}
_CHAT: dict[str, Any] = {"id": 1, "type": "private", "first_name": "warm-up"}
_MESSAGE: dict[str, Any] = {
    "message_id": 1, "date": 0, "chat": _CHAT, "from": _USER, "text": "JZ-001 60% 管网铺设过半",
    "reply_to_message": {"message_id": 0, "date": 0, "chat": _CHAT, "text": "—"},
    "photo": [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}],
}
_KEYBOARD: dict[str, Any] = {"inline_keyboard": [[{"text": "—", "callback_data": "—"}]]}


def _aiogram_models() -> None:
    """An update of each kind the bot handles and the answers it sends, validated as polling and the Bot's
    session validate them."""
    from aiogram.methods import (
        AnswerCallbackQuery,
        EditMessageText,
        Response,
        SendDocument,
        SendMessage,
        SendPhoto,
    )
    from aiogram.types import BufferedInputFile, Message, Update

    Update.model_validate({"update_id": 1, "message": _MESSAGE}, context={})
    Update.model_validate({"update_id": 2, "callback_query": {
        "id": "1", "from": _USER, "chat_instance": "1", "data": "—", "message": _MESSAGE}}, context={})
    Response[Message].model_validate({"ok": True, "result": _MESSAGE}, context={})
    Response[bool].model_validate({"ok": True, "result": True}, context={})
    SendMessage(chat_id=1, text="—", reply_markup=_KEYBOARD)
    EditMessageText(chat_id=1, message_id=1, text="—", reply_markup=_KEYBOARD)
    AnswerCallbackQuery(callback_query_id="1")
    SendPhoto(chat_id=1, photo="f", caption="—")
    SendDocument(chat_id=1, document=BufferedInputFile(b"", "—"))


def _chat_templates() -> None:
    for lang in LANGUAGES:
        for path in sorted((templates_dir() / lang).iterdir()):
            if path.suffix in (".html", ".txt", ".md") and not path.name.startswith(NOT_CHAT):
                module_of(lang, path.stem)


def warm_up() -> float:
    """Build the above; returns the seconds it took (logged)."""
    started = time.perf_counter()
    _aiogram_models()
    _chat_templates()
    parse_report("JZ-001 60% 管网铺设过半 存在问题：无 下一步：验收", ["管网铺设过半"])
    took = time.perf_counter() - started
    log.info("warmed up in %.2f s", took)
    return took
