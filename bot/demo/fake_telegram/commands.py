"""The bot's own profile: getMe, the command list (setMyCommands, getMyCommands,
deleteMyCommands) and the chat menu button."""

from __future__ import annotations

import json
from typing import Any

from bot.demo.fake_telegram.api import _COMMAND_NAME_RE, BOT_USER, _bad, _Params


class BotProfileMixin:
    """A part of FakeTelegram (server.py), which holds the state these methods use."""

    def _get_me(self, p: _Params) -> dict[str, Any]:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_my_commands(self, p: _Params) -> bool:
        commands = p.get_json("commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        clean = []
        for c in commands:
            if not isinstance(c, dict):
                raise _bad("can't parse BotCommand")
            command = str(c.get("command", "")).removeprefix("/")
            description = str(c.get("description", ""))
            if not _COMMAND_NAME_RE.fullmatch(command):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        self.commands[self._commands_key(p)] = clean
        self._record("setMyCommands", p, None)
        return True

    def _get_my_commands(self, p: _Params) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(p), [])

    def _delete_my_commands(self, p: _Params) -> bool:
        self.commands.pop(self._commands_key(p), None)
        self._record("deleteMyCommands", p, None)
        return True

    def _commands_key(self, p: _Params) -> tuple[str, str]:
        scope = p.get_json("scope", "can't parse BotCommandScope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), p.get_str("language_code") or ""

    def _set_chat_menu_button(self, p: _Params) -> bool:
        chat_id = p.get_int("chat_id", "chat not found")
        if chat_id is not None and chat_id not in self.chats:
            raise _bad("chat not found")
        button = p.get_json("menu_button", "can't parse menu button JSON object") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("commands", "web_app", "default"):
            raise _bad("unsupported menu button type")
        self.menu_buttons[chat_id] = button
        self._record("setChatMenuButton", p, chat_id)
        return True

    def _get_chat_menu_button(self, p: _Params) -> dict[str, Any]:
        chat_id = p.get_int("chat_id", "chat not found")
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "commands"}
        return {"type": "commands"} if button.get("type") == "default" else button
