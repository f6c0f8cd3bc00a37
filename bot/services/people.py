"""People and onboarding: one-time invites (stored hashed) that bind a Telegram user to a role and county.

Decisions:
- an invite code is 16 random URL-safe characters (96 bits), valid for a Telegram deep link
  (`?start=<code>`); only its SHA-256 is stored, so a database dump does not hand out invites;
- redeeming is a conditional UPDATE (`… WHERE used_at IS NULL`), so two people racing for one code
  cannot both win;
- a user who is already bound and redeems another invite takes the new role and county (that is how a
  role changes); their language and history stay;
- ADMIN_IDS are made administrators on first contact and stay so (ensure_admin)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.clock import utcnow
from bot.domain.states import Role
from bot.ledger.format import closest_county, county_key
from bot.store.models import County, Invite, Person, ProcessedUpdate

COUNTY_ROLES = (Role.CONTACT, Role.COUNTY_LEADER)  # roles that belong to one county
CODE_BYTES = 12  # 16 URL-safe characters


class InviteError(ValueError):
    """An invite cannot be made as asked; `code` names the template that explains why."""

    def __init__(self, code: str, **detail: object) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class RedeemFailure:
    reason: str  # unknown | used | expired


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


async def find_county(session: AsyncSession, name: str) -> County | None:
    return await session.scalar(select(County).where(County.name == name.strip()))


async def county_for_invite(session: AsyncSession, name: str) -> tuple[County | None, str | None, bool]:
    """The county `name` means, compared as the import compares names (`祁 县` is 祁县); when there is
    none: the closest known name to suggest (as the import does), and whether any county is known."""
    counties = {county_key(c.name): c for c in await session.scalars(select(County))}
    found = counties.get(county_key(name))
    if found is not None:
        return found, None, True
    return None, closest_county(name, {key: c.name for key, c in counties.items()}), bool(counties)


async def create_invite(
    session: AsyncSession,
    *,
    role: str,
    county: County | None,
    name: str = "",
    ttl: dt.timedelta,
    now: dt.datetime | None = None,
) -> tuple[str, Invite]:
    """Make a one-time invite and commit; returns the code (shown once, never stored) and the row."""
    try:
        role = Role(role)
    except ValueError:
        raise InviteError("unknown_role", role=role) from None
    if role in COUNTY_ROLES and county is None:
        raise InviteError("county_required", role=role)
    if role not in COUNTY_ROLES and county is not None:
        raise InviteError("county_not_allowed", role=role)
    now = now or utcnow()
    code = secrets.token_urlsafe(CODE_BYTES)
    invite = Invite(
        code_hash=hash_code(code),
        role=role,
        county_id=county.id if county else None,
        name=name.strip()[:100],
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(invite)
    await session.commit()
    return code, invite


async def redeem(
    session: AsyncSession,
    code: str,
    *,
    telegram_id: int,
    telegram_name: str,
    language: str,
    now: dt.datetime | None = None,
) -> Person | RedeemFailure:
    """Bind the Telegram user to the invite's role and county, and commit."""
    now = now or utcnow()
    invite = await session.scalar(select(Invite).where(Invite.code_hash == hash_code(code)))
    if invite is None:
        return RedeemFailure("unknown")
    if invite.used_at is not None:
        return RedeemFailure("used")
    if invite.expires_at <= now:
        return RedeemFailure("expired")
    claimed = await session.execute(
        update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None)).values(used_at=now)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        await session.rollback()
        return RedeemFailure("used")
    person = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
    if person is None:
        person = Person(telegram_id=telegram_id, language=language, created_at=now)
        session.add(person)
    person.name = invite.name or telegram_name.strip()[:100] or str(telegram_id)
    person.role = invite.role
    person.county_id = invite.county_id
    person.reachable, person.unreachable_reason = True, ""
    await session.flush()
    await session.execute(update(Invite).where(Invite.id == invite.id).values(person_id=person.id))
    await session.commit()
    await session.refresh(person, ["county"])
    return person


async def ensure_admin(
    session: AsyncSession, *, telegram_id: int, telegram_name: str, language: str
) -> Person:
    """An ADMIN_IDS user: create or upgrade them to administrator, and commit."""
    person = await session.scalar(select(Person).where(Person.telegram_id == telegram_id))
    if person is None:
        person = Person(telegram_id=telegram_id, name=telegram_name.strip()[:100] or str(telegram_id),
                        role=Role.ADMIN, language=language)
        session.add(person)
    person.role = Role.ADMIN
    person.reachable, person.unreachable_reason = True, ""
    await session.commit()
    await session.refresh(person, ["county"])
    return person


async def person_by_telegram_id(session: AsyncSession, telegram_id: int) -> Person | None:
    return await session.scalar(select(Person).where(Person.telegram_id == telegram_id))


async def writer_of_update(
    session: AsyncSession, telegram_id: int, update_id: int
) -> tuple[Person | None, bool | None]:
    """Who wrote, and whether this update was handled already (Telegram redelivers), in one query, as
    every update asks both. (None, None) for someone unknown: then nothing is said about the update."""
    handled = exists().where(ProcessedUpdate.update_id == update_id)
    row = (await session.execute(select(Person, handled).where(Person.telegram_id == telegram_id))).first()
    return (row[0], bool(row[1])) if row is not None else (None, None)


async def mark_reachable(session: AsyncSession, person: Person) -> None:
    """They wrote to the bot, so they have not blocked it (any more): the sender may write again."""
    person.reachable, person.unreachable_reason = True, ""
    await session.commit()


async def set_language(session: AsyncSession, person: Person, language: str) -> None:
    person.language = language
    await session.commit()


@dataclass(frozen=True)
class PendingInvite:
    role: str
    county: str | None  # None: a city-wide role
    name: str
    expires_at: dt.datetime


async def pending_invites(session: AsyncSession, now: dt.datetime | None = None) -> list[PendingInvite]:
    """Invites not used yet and not expired, the soonest to expire first."""
    now = now or utcnow()
    rows = await session.execute(
        select(Invite.role, County.name, Invite.name, Invite.expires_at)
        .outerjoin(County, County.id == Invite.county_id)
        .where(Invite.used_at.is_(None), Invite.expires_at > now)
        .order_by(Invite.expires_at, Invite.id)
    )
    return [PendingInvite(role, county, name, expires_at) for role, county, name, expires_at in rows]


async def list_people(session: AsyncSession) -> list[Person]:
    """Everyone bound to Telegram: city-wide roles first, then by county and name."""
    order = {role: i for i, role in enumerate(Role)}
    people = list(await session.scalars(select(Person).where(Person.telegram_id.is_not(None))))
    return sorted(
        people,
        key=lambda p: (order.get(p.role, len(order)), p.county.sort_order if p.county else -1,
                       p.county.name if p.county else "", p.name, p.id),
    )
