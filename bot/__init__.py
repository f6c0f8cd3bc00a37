"""Qingshui: the ledger, the chat bot and the notification service."""

from bot.telegram import lazy_aiogram

lazy_aiogram.install()  # before anything imports aiogram: its types are built on first use
