"""Updates being handled right now, so a shutdown lets them finish before the bot closes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

log = logging.getLogger(__name__)


class InFlight(BaseMiddleware):
    """Outer middleware on dp.update: counts handlers in progress; `drain` waits for them."""

    def __init__(self) -> None:
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        return self._active

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self._active += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def drain(self, seconds: float) -> bool:
        """Wait until no handler runs (True) or `seconds` pass (False)."""
        if self._active:
            log.info("waiting for %d update(s) in progress", self._active)
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            log.warning("%d update(s) still in progress after %.0fs; stopping anyway", self._active, seconds)
            return False
        return True
