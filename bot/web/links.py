"""Personal cockpit links: signed, expiring, revocable (README "Cockpit").

A link's key is `<person id>.<generation>.<expiry>.<signature>`: the signature is an HMAC-SHA256 over the
rest with a secret derived from BOT_TOKEN (so nothing more is kept, and a new token voids every link).
It is good until its expiry (WEB_LINK_HOURS after it was issued) while the person's generation in
`web_access` is still the one it carries: revoking bumps the generation, voiding every earlier link."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.store.models import Person, WebAccess

_CONTEXT = b"qingshui cockpit links v1"
SIGNATURE_BYTES = 18  # 144 bits, 24 characters


def secret_of(settings: Settings) -> bytes:
    """The signing key, derived from BOT_TOKEN (never the token itself)."""
    return hmac.new(settings.require_token().encode(), _CONTEXT, hashlib.sha256).digest()


def _signature(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: bytes, person_id: int, generation: int, expires: dt.datetime) -> str:
    body = f"{person_id}.{generation}.{int(expires.timestamp())}"
    return f"{body}.{_signature(secret, body)}"


@dataclass(frozen=True)
class Key:
    person_id: int
    generation: int
    expires: dt.datetime


class Refused(Exception):
    """Why a key opens nothing: `forged`, `expired` or `revoked` (templates: web_common.refused)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(secret: bytes, key: str, now: dt.datetime) -> Key:
    """The key's contents once its signature and expiry are checked; Refused otherwise."""
    body, _, signature = key.strip().rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise Refused("forged")
    if not hmac.compare_digest(signature.encode(), _signature(secret, body).encode()):
        raise Refused("forged")
    expires = dt.datetime.fromtimestamp(int(parts[2]), dt.UTC)
    if expires <= now:
        raise Refused("expired")
    return Key(int(parts[0]), int(parts[1]), expires)


async def generation(session: AsyncSession, person_id: int) -> int:
    return await session.scalar(select(WebAccess.generation).where(WebAccess.person_id == person_id)) or 0


async def issue(session: AsyncSession, person: Person, settings: Settings, now: dt.datetime) -> tuple[str, dt.datetime]:
    """A fresh key for `person` and its expiry."""
    expires = now + dt.timedelta(hours=settings.web_link_hours)
    return sign(secret_of(settings), person.id, await generation(session, person.id), expires), expires


def link(settings: Settings, key: str) -> str:
    return f"{settings.web_base_url}/?k={key}"


async def revoke(session: AsyncSession, person_id: int, now: dt.datetime) -> None:
    """Void every link issued to the person so far (commits)."""
    row = await session.get(WebAccess, person_id)
    if row is None:
        session.add(WebAccess(person_id=person_id, generation=1, revoked_at=now))
    else:
        row.generation += 1
        row.revoked_at = now
    await session.commit()


async def holder(session: AsyncSession, settings: Settings, key: str, now: dt.datetime) -> Person:
    """The bound person a key was issued to; Refused when forged, expired or revoked."""
    parsed = parse(secret_of(settings), key, now)
    if parsed.generation != await generation(session, parsed.person_id):
        raise Refused("revoked")
    person = await session.get(Person, parsed.person_id)
    if person is None or person.telegram_id is None:
        raise Refused("revoked")
    return person
