"""Who may do what: the one place the role rules live.

Handlers never check roles themselves; handlers/access.py asks `can` for every flagged handler."""

from __future__ import annotations

from bot.domain.states import Role

ACTIONS = ("see", "report", "invite", "import", "channels")  # channels: README "Channels", admins only

# What each role may do, and whether only inside its own county.
_CITY_WIDE: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(ACTIONS),
    Role.LEADER: frozenset({"see"}),
}
_OWN_COUNTY: dict[Role, frozenset[str]] = {
    Role.COUNTY_LEADER: frozenset({"see"}),
    Role.CONTACT: frozenset({"see", "report"}),
}


def can(person_role: str, person_county_id: int | None, action: str, project_county_id: int | None) -> bool:
    """May a person with this role and county do `action` on something in `project_county_id`?

    `project_county_id` None means the city as a whole (all counties, or no county at all, as for
    inviting people and importing the ledger): only city-wide roles reach it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action in _CITY_WIDE.get(person_role, frozenset()):
        return True
    if action in _OWN_COUNTY.get(person_role, frozenset()):
        return person_county_id is not None and person_county_id == project_county_id
    return False


def is_city_wide(person_role: str) -> bool:
    """Roles that see every county (and so choose a county first when listing)."""
    return person_role in _CITY_WIDE
