"""Qingshui: the ledger, the chat bot and the notification service (README "Layout")."""
