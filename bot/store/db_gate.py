"""How many updates use the database at once, and letting go of it while talking to Telegram.

Under a burst (a reminder wave: hundreds of updates within a second) every update used to open its
session at once. An update can need two connections (its own session, plus a short one for the dialog
storage or for recording it as handled), so a pool of N could be taken by N updates each waiting for
its second connection: all of them timed out after 30 s together. The gate lets only
`update_slots(pool_size)` updates hold the database at a time; the rest wait their turn, first come
first served (one person's updates already wait in order on aiogram's per-person lock, which is taken
before the gate, so waiting for it holds no connection either).

While an update talks to Telegram (an answer can wait for Telegram's per-chat pace or a 429), it holds
neither a connection nor a slot: `away_from_database()` ends the update's transaction — answers go out
after what the handler did is committed, as README "Running it" promises — gives back the slot, and
takes a slot again before the handler goes on.

README "Configuration": DB_POOL_SIZE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

RESERVED_CONNECTIONS = 2  # the outbox sender and the scheduler's jobs
CONNECTIONS_PER_UPDATE = 2  # the update's session, plus a short one (dialog storage, "handled" record)


def update_slots(pool_size: int) -> int:
    """Updates that may use the database at once with a pool of `pool_size` connections."""
    return max(1, (pool_size - RESERVED_CONNECTIONS) // CONNECTIONS_PER_UPDATE)


@dataclass
class _Held:
    gate: DbGate
    session: AsyncSession
    holding: bool = True


_CURRENT: ContextVar[_Held | None] = ContextVar("qingshui_db_gate", default=None)


class DbGate:
    """A fair semaphore of database slots for updates."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphore = asyncio.Semaphore(slots)

    @property
    def free(self) -> int:
        return self._semaphore._value  # for tests and logs only

    @asynccontextmanager
    async def held(self, session: AsyncSession) -> AsyncIterator[None]:
        """Hold a slot for the update whose session this is, for as long as the block runs."""
        await self._semaphore.acquire()
        held = _Held(self, session)
        token = _CURRENT.set(held)
        try:
            yield
        finally:
            _CURRENT.reset(token)
            if held.holding:
                self._semaphore.release()

    def _release(self) -> None:
        self._semaphore.release()

    async def _acquire(self) -> None:
        await self._semaphore.acquire()


@asynccontextmanager
async def away_from_database() -> AsyncIterator[None]:
    """Around a call to Telegram made while handling an update: commit the update's transaction (its
    connection goes back to the pool) and give back its slot; take a slot again afterwards. Outside an
    update (the sender, start-up calls) it does nothing."""
    held = _CURRENT.get()
    if held is None or not held.holding:
        yield
        return
    if held.session.in_transaction():
        await held.session.commit()
    held.holding = False
    held.gate._release()
    try:
        yield
    finally:
        await held.gate._acquire()  # cancelled while waiting: no slot taken, and `held` releases none
        held.holding = True
