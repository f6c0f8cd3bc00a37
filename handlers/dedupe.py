"""A repeated update (same update_id, as Telegram may redeliver) is applied once.

The update id is recorded in the SAME transaction as the handler's work: the first commit on the
update's session inserts the `processed_updates` row along with the report (or whatever the handler
saves). So a crash before that commit leaves nothing recorded, and the redelivery is handled
(Healthchecks' gap: never mark done before it is done); after it, the redelivery finds the row and
is dropped. A duplicate handled at the same moment by another instance fails at commit on the
primary key and is dropped too (its work is rolled back with it). An update whose handler commits
nothing (a list, a dialog step kept in the FSM storage) is recorded after it is handled.

Rows older than KEEP are pruned now and then: Telegram gives up redelivering after 24 hours."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from sqlalchemy import delete
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from bot.domain.clock import utcnow
from bot.store.models import ProcessedUpdate
from handlers.identity import UPDATE_HANDLED

log = logging.getLogger(__name__)
KEEP = dt.timedelta(days=2)  # Telegram keeps an unconfirmed update for 24 hours
PRUNE_EVERY_SECONDS = 3600.0


class _RecordOnCommit:
    """Adds the update's row to the first commit of the update's session that carries the handler's work.

    A commit with nothing written (an answer going out ends a read-only transaction: bot.store.db_gate) records
    nothing, so the update is not marked handled before its work is saved."""

    def __init__(self, update_id: int) -> None:
        self.update_id = update_id
        self.committed = False
        self._wrote = False  # this transaction wrote something: flushed changes or an INSERT/UPDATE/DELETE
        self._adding = False

    def before_commit(self, session: Session) -> None:
        if self.committed or not (self._wrote or session.new or session.dirty or session.deleted):
            return
        session.add(ProcessedUpdate(update_id=self.update_id, at=utcnow()))
        self._adding = True

    def after_commit(self, _session: Session) -> None:
        self.committed = self.committed or self._adding
        self._wrote = self._adding = False

    def after_rollback(self, _session: Session) -> None:
        self._wrote = self._adding = False

    def after_flush(self, _session: Session, _context: object) -> None:
        self._wrote = True

    def do_orm_execute(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            self._wrote = True

    _EVENTS = ("before_commit", "after_commit", "after_rollback", "after_flush", "do_orm_execute")

    def attach(self, session: AsyncSession) -> None:
        for name in self._EVENTS:
            sa_event.listen(session.sync_session, name, getattr(self, name))

    def detach(self, session: AsyncSession) -> None:
        for name in self._EVENTS:
            sa_event.remove(session.sync_session, name, getattr(self, name))


class DedupeMiddleware(BaseMiddleware):
    """Outer middleware on dp.update, after the session middleware (it uses the update's session)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self._pruned_at: float | None = None

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        session: AsyncSession = data["session"]
        update_id = event.update_id
        handled = data.pop(UPDATE_HANDLED, None)  # IdentityMiddleware's, when it knew the writer
        if handled is None:
            handled = await session.get(ProcessedUpdate, update_id) is not None
        if handled:
            log.info("update %s delivered again: dropped", update_id)
            return None
        record = _RecordOnCommit(update_id)
        record.attach(session)
        try:
            result = await handler(event, data)
        except IntegrityError:
            if await self._recorded(update_id):  # a duplicate handled elsewhere won the race
                log.info("update %s handled at the same time elsewhere: dropped", update_id)
                return None
            raise
        finally:
            record.detach(session)
        if not record.committed:
            await self._record(update_id)
        await self._prune()
        return result

    async def _recorded(self, update_id: int) -> bool:
        async with self.sessionmaker() as session:
            return await session.get(ProcessedUpdate, update_id) is not None

    async def _record(self, update_id: int) -> None:
        """Record an update whose handler committed nothing. Losing this row only means a redelivery
        is answered again, so a failure here is not the user's problem."""
        try:
            async with self.sessionmaker() as session:
                session.add(ProcessedUpdate(update_id=update_id, at=utcnow()))
                with suppress(IntegrityError):  # a duplicate recorded it first
                    await session.commit()
        except (SQLAlchemyError, OSError):  # asyncpg's own OSError when it cannot connect
            log.warning("update %s: could not record it as handled", update_id, exc_info=True)

    async def _prune(self) -> None:
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        try:
            async with self.sessionmaker() as session:
                await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < utcnow() - KEEP))
                await session.commit()
        except (SQLAlchemyError, OSError):
            log.warning("could not prune old processed updates", exc_info=True)
