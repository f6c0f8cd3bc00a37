"""Callback data for every button (aiogram CallbackData factories; each packs under 64 bytes)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class ProjectAction(CallbackData, prefix="p"):
    """A button about one project. `action`: card | report | nochange | dossier | timeline | file."""

    action: str
    code: str
    page: int = 0
