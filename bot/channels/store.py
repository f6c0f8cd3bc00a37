"""Channels in the database: add, list (with their last delivery, last error and messages that died),
remove, and find who gets what (README "Channels")."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import KINDS, SENDS, Target
from bot.channels.email import valid_addresses
from bot.domain.states import OutboxState
from bot.store.models import Channel, County, Outbox


class ChannelError(Exception):
    """A channel cannot be added or found; `code` names why (cli_channel.error words it)."""

    def __init__(self, code: str, **details: str) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Listed:
    channel: Channel
    county: str  # "" for the city
    pending: int
    dead: int


def parse_sends(value: str) -> str:
    chosen = [s.strip() for s in value.replace("，", ",").split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SENDS]
    if unknown or not chosen:
        raise ChannelError("bad_sends", value=value)
    return ",".join(s for s in SENDS if s in chosen)


def check_target(kind: str, target: str) -> None:
    if kind == "email":
        if not valid_addresses(target):
            raise ChannelError("bad_addresses", target=target)
        return
    if not (target.startswith("https://") or target.startswith("http://")):
        raise ChannelError("bad_url", target=target)


async def add_channel(
    session: AsyncSession, *, name: str, kind: str, target: str, secret: str = "", county: County | None = None,
    sends: str = "digest,alerts",
) -> Channel:
    """Store a channel (commits); ChannelError for a name taken, an unknown kind, a bad target or `--send`."""
    name, target = name.strip(), target.strip()
    if not name:
        raise ChannelError("bad_name", name=name)
    if kind not in KINDS:
        raise ChannelError("bad_kind", kind=kind)
    check_target(kind, target)
    chosen = parse_sends(sends)
    if "reminders" in chosen and county is None:
        raise ChannelError("reminders_need_county")
    if await session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise ChannelError("name_taken", name=name)
    channel = Channel(name=name, kind=kind, target=target, secret=secret.strip(),
                      county_id=county.id if county else None, sends=chosen, last_error="")
    session.add(channel)
    await session.commit()
    return channel


async def find_channel(session: AsyncSession, name: str) -> Channel:
    channel = await session.scalar(select(Channel).where(Channel.name == name.strip()))
    if channel is None:
        raise ChannelError("unknown", name=name)
    return channel


async def remove_channel(session: AsyncSession, name: str) -> Channel:
    """Delete the channel and its outbox rows (commits)."""
    channel = await find_channel(session, name)
    await session.execute(delete(Outbox).where(Outbox.channel_id == channel.id))
    await session.delete(channel)
    await session.commit()
    return channel


async def list_channels(session: AsyncSession) -> list[Listed]:
    channels = list(await session.scalars(select(Channel).order_by(Channel.name)))
    counts: dict[tuple[int, str], int] = {}
    if channels:
        rows = await session.execute(
            select(Outbox.channel_id, Outbox.state, func.count())
            .where(Outbox.channel_id.in_([c.id for c in channels]),
                   Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING, OutboxState.DEAD)))
            .group_by(Outbox.channel_id, Outbox.state)
        )
        for channel_id, state, count in rows:
            key = (channel_id, "dead" if state == "dead" else "pending")
            counts[key] = counts.get(key, 0) + count
    return [Listed(c, c.county.name if c.county else "", counts.get((c.id, "pending"), 0),
                   counts.get((c.id, "dead"), 0)) for c in channels]


async def channels_for(session: AsyncSession, what: str) -> list[Channel]:
    """Channels that get `what` (digest, alerts, reminders), in the order they were added."""
    found = await session.scalars(select(Channel).order_by(Channel.id))
    return [c for c in found if what in c.sends.split(",")]


def target_of(channel: Channel) -> Target:
    return Target(channel.id, channel.name, channel.kind, channel.target, channel.secret)
