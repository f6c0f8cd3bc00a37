"""The channel kinds by name: each module's pace, sizes and `deliver` (bot.channels.base)."""

from __future__ import annotations

from types import ModuleType

from bot.channels import dingtalk, email, feishu, wecom

MODULES: dict[str, ModuleType] = {m.KIND: m for m in (wecom, dingtalk, feishu, email)}


def module(kind: str) -> ModuleType:
    return MODULES[kind]
