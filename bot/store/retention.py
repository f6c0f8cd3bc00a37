"""Outbox retention: sent rows are deleted after OUTBOX_KEEP_SENT_DAYS, dead and expired ones after
OUTBOX_KEEP_DEAD_DAYS (kept longer: they are evidence of a problem). Pending and claimed rows are never
touched, whatever their age.

Deleting goes in small batches, each its own short transaction, so SQLite's single writer lock is
never held for long while the bot answers. The files the digest queued (its chart and workbook under
DATA_DIR/outbox/<date>/) go with the last row that names them; photos of reports are never touched
(no outbox row names them). Runs daily on the instance holding the scheduler lease (bot/scheduler.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Text, and_, cast, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.states import OutboxState
from bot.store.models import Outbox

log = logging.getLogger(__name__)

BATCH = 500  # rows per DELETE: a few milliseconds of SQLite's write lock
FILES_FOLDER = "outbox"  # the only folder under DATA_DIR whose files outbox rows own
FINISHED_FAILED = (OutboxState.DEAD, OutboxState.EXPIRED)


@dataclass
class Pruned:
    sent: int = 0
    dead: int = 0
    files: int = 0


def _prunable(settings: Settings, now: dt.datetime) -> object:
    sent_before = now - dt.timedelta(days=settings.outbox_keep_sent_days)
    dead_before = now - dt.timedelta(days=settings.outbox_keep_dead_days)
    # a dead row's not_before is its last try (each retry moves it on); a sent row has its sent_at
    return or_(
        and_(Outbox.state == OutboxState.SENT, Outbox.sent_at < sent_before),
        and_(Outbox.state.in_(FINISHED_FAILED), Outbox.not_before < dead_before),
    )


async def prune_outbox(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: dt.datetime,
    *,
    batch: int = BATCH,
) -> Pruned:
    """Delete the outbox rows past their retention, and the files only they named."""
    pruned = Pruned()
    condition = _prunable(settings, now)
    while True:
        async with sessionmaker() as session:
            rows = (await session.execute(
                select(Outbox.id, Outbox.state, Outbox.method, Outbox.payload).where(condition).limit(batch)
            )).all()
            if not rows:
                break
            await session.execute(
                delete(Outbox).where(Outbox.id.in_([r.id for r in rows]), condition)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            paths = {str(r.payload["path"]) for r in rows
                     if r.method in ("photo", "document") and isinstance(r.payload, dict) and r.payload.get("path")}
            pruned.files += await _remove_unneeded(session, settings.data_dir, paths)
        pruned.sent += sum(1 for r in rows if r.state == OutboxState.SENT)
        pruned.dead += sum(1 for r in rows if r.state != OutboxState.SENT)
        if len(rows) < batch:
            break
        await asyncio.sleep(0)  # let the chat's transactions in between batches
    if pruned.sent or pruned.dead:
        log.info("outbox retention: deleted %s sent and %s dead or expired rows, %s files",
                 pruned.sent, pruned.dead, pruned.files)
    return pruned


async def _remove_unneeded(session: AsyncSession, data_dir: Path, paths: set[str]) -> int:
    """Remove those of `paths` (relative to DATA_DIR) that no remaining outbox row names."""
    removed = 0
    root = (data_dir / FILES_FOLDER).resolve()
    for relative in sorted(paths):
        target = (data_dir / relative).resolve()
        if not target.is_relative_to(root):
            continue  # not a file the outbox owns
        named = await session.scalar(
            select(Outbox.id).where(cast(Outbox.payload, Text).contains(relative, autoescape=True)).limit(1)
        )
        if named is not None:
            continue
        try:
            if target.is_file():
                target.unlink()
                removed += 1
            if target.parent != root and not any(target.parent.iterdir()):
                target.parent.rmdir()  # the digest's folder of that day, now empty
        except OSError as exc:
            log.warning("outbox retention: could not remove %s: %r", relative, exc)
    return removed
