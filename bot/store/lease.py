"""A named lease in the database: at most one holder at a time, taken over when it expires.

Used so that exactly one instance runs the scheduler. Taking and renewing are one conditional
UPDATE (`… WHERE name = ? AND (holder = me OR expires_at < now)`) or, for a lease never taken
before, an INSERT that loses to a concurrent one on the primary key: both are atomic on SQLite
and PostgreSQL alike, so two instances can never both believe they hold it at the same moment
(as long as their clocks agree to within the renewal margin).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.clock import Clock, utcnow
from bot.store.models import Lease

log = logging.getLogger(__name__)

def default_name() -> str:
    """A holder's name: host, process and a random part (a restarted process is a new holder)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


SCHEDULER_LEASE = "scheduler"


async def try_acquire(session: AsyncSession, name: str, holder: str, now: dt.datetime, seconds: float) -> bool:
    """Take or renew lease `name` for `holder` until now + seconds; True when `holder` holds it. Commits."""
    until = now + dt.timedelta(seconds=seconds)
    taken = await session.execute(
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        await session.commit()
        return True
    exists = await session.scalar(select(Lease.name).where(Lease.name == name))
    if exists is not None:
        await session.rollback()
        return False
    session.add(Lease(name=name, holder=holder, expires_at=until))
    try:
        await session.commit()
    except IntegrityError:  # another instance inserted it first
        await session.rollback()
        return False
    return True


async def release(session: AsyncSession, name: str, holder: str, now: dt.datetime) -> None:
    """Give the lease up now (only if `holder` still holds it), so another instance takes over at once."""
    await session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=now - dt.timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def current_holder(session: AsyncSession, name: str, now: dt.datetime) -> str | None:
    """Who holds lease `name` at `now` (None when nobody or it expired)."""
    row = await session.get(Lease, name, populate_existing=True)
    if row is None or row.expires_at < now:
        return None
    return row.holder


async def live_names(session: AsyncSession, prefix: str, now: dt.datetime) -> list[str]:
    """Names of the unexpired leases starting with `prefix` (e.g. live senders), sorted."""
    query = select(Lease.name).where(Lease.name.like(f"{prefix}%"), Lease.expires_at >= now).order_by(Lease.name)
    return list(await session.scalars(query))


async def forget_expired(session: AsyncSession, prefix: str, now: dt.datetime, grace: float) -> None:
    """Delete leases under `prefix` expired for more than `grace` seconds (crashed holders' rows). Commits."""
    await session.execute(
        delete(Lease).where(Lease.name.like(f"{prefix}%"), Lease.expires_at < now - dt.timedelta(seconds=grace))
    )
    await session.commit()


class LeaseKeeper:
    """Takes lease `name` when it is free and renews it every `seconds / 3` while running.

    `held` is True only while the last renewal is fresh enough that the lease cannot have expired
    (renewal margin: one third of its length), so a holder cut off from the database stops
    acting before anyone else can take over. `on_acquired` runs each time the lease is gained."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        name: str,
        holder: str,
        seconds: float,
        *,
        clock: Clock = utcnow,
        on_acquired: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.name = name
        self.holder = holder
        self.seconds = seconds
        self.clock = clock
        self.on_acquired = on_acquired
        self._held_until: dt.datetime | None = None

    @property
    def renew_every(self) -> float:
        return self.seconds / 3

    @property
    def held(self) -> bool:
        if self._held_until is None:
            return False
        margin = dt.timedelta(seconds=self.renew_every)
        return self.clock() < self._held_until - margin

    async def renew_once(self) -> bool:
        """One attempt to take or renew; True when held afterwards."""
        was_held = self.held
        now = self.clock()
        try:
            async with self.sessionmaker() as session:
                got = await try_acquire(session, self.name, self.holder, now, self.seconds)
        except Exception:  # also the driver's own OSError when it cannot even connect: keep renewing
            log.exception("lease %s: could not reach the database", self.name)
            got = False
        if got:
            self._held_until = now + dt.timedelta(seconds=self.seconds)
        elif not self.held:
            self._held_until = None
        if got and not was_held:
            log.info("lease %s taken by %s", self.name, self.holder)
            if self.on_acquired is not None:
                await self.on_acquired()
        elif was_held and not got:
            log.warning("lease %s lost by %s", self.name, self.holder)
        return got

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the lease until `stop` is set, then release it."""
        try:
            while not stop.is_set():
                await self.renew_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.renew_every)
        finally:
            if self._held_until is not None:
                self._held_until = None
                try:
                    async with self.sessionmaker() as session:
                        await release(session, self.name, self.holder, self.clock())
                except Exception:  # it expires by itself
                    log.exception("lease %s: could not release", self.name)
