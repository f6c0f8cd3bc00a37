"""What the service runs beside the chat: the outbox sender and the lease-guarded job scheduler.

`bot/telegram/app.py` calls `start_background(...)` once the database is ready and `stop()` on shutdown.
Every instance runs a sender (they share the outbox safely); only the lease holder runs jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.sender import ChannelSender
from bot.config import Settings
from bot.domain.clock import Clock, utcnow
from bot.scheduler import JobScheduler
from bot.store.lease import default_name
from bot.telegram.pacing import Pacer
from bot.telegram.sender import Sender

log = logging.getLogger(__name__)


@dataclass
class Background:
    sender: Sender
    scheduler: JobScheduler
    sender_task: asyncio.Task[None]
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    channel_sender: ChannelSender | None = None  # group robots and mailboxes (README "Channels")
    channel_task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Something was queued outside the jobs (e.g. by a handler): send it now."""
        self.sender.kick()
        if self.channel_sender is not None:
            self.channel_sender.kick()

    async def stop(self, grace: float = 15.0) -> None:
        """Stop the scheduler (a running job finishes) and the sender (messages in flight finish,
        claimed but unsent ones are given back), waiting at most `grace` seconds for each."""
        await self.scheduler.stop(grace=grace)
        self._stop.set()
        tasks = {self.sender_task} | ({self.channel_task} if self.channel_task else set())
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            log.warning("%s did not stop within %s s: cancelling it", task.get_name(), grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def start_background(
    settings: Settings,
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    clock: Clock = utcnow,
    pacer: Pacer | None = None,
) -> Background:
    """Start the sender and the scheduler (which catches up missed jobs once it holds the lease)."""
    name = default_name()
    stop = asyncio.Event()
    sender = Sender(bot, sessionmaker, settings, clock=clock, name=name, pacer=pacer)
    channels = ChannelSender(sessionmaker, settings, clock=clock, name=name, on_queued=sender.kick)

    def queued() -> None:
        sender.kick()
        channels.kick()

    scheduler = JobScheduler(settings, sessionmaker, clock=clock, holder=name, on_queued=queued)
    sender_task = asyncio.create_task(sender.run(stop), name="qingshui-sender")
    channel_task = asyncio.create_task(channels.run(stop), name="qingshui-channel-sender")
    await scheduler.start()
    log.info("background started: sender, channel sender and scheduler as %s", name)
    return Background(sender=sender, scheduler=scheduler, sender_task=sender_task, _stop=stop,
                      channel_sender=channels, channel_task=channel_task)
