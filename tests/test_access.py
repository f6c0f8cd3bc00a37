"""The permission rules: each role × each action × own county, another county and the city as a whole."""

from __future__ import annotations

import pytest

from bot.domain.access import ACTIONS, can, is_city_wide

OWN, OTHER = 7, 8

# role -> action -> (own county, other county, city as a whole)
EXPECTED: dict[str, dict[str, tuple[bool, bool, bool]]] = {
    "contact": {
        "see": (True, False, False),
        "report": (True, False, False),
        "invite": (False, False, False),
        "import": (False, False, False),
        "channels": (False, False, False),
    },
    "county_leader": {
        "see": (True, False, False),
        "report": (False, False, False),
        "invite": (False, False, False),
        "import": (False, False, False),
        "channels": (False, False, False),
    },
    "leader": {
        "see": (True, True, True),
        "report": (False, False, False),
        "invite": (False, False, False),
        "import": (False, False, False),
        "channels": (False, False, False),
    },
    "admin": {
        "see": (True, True, True),
        "report": (True, True, True),
        "invite": (True, True, True),
        "import": (True, True, True),
        "channels": (True, True, True),
    },
}

CASES = [
    pytest.param(role, action, target, EXPECTED[role][action][i], id=f"{role}-{action}-{name}")
    for role in EXPECTED
    for action in ACTIONS
    for i, (name, target) in enumerate((("own", OWN), ("other", OTHER), ("city", None)))
]


def test_every_role_and_action_is_covered() -> None:
    assert set(ACTIONS) == {"see", "report", "invite", "import", "channels"}
    for role, actions in EXPECTED.items():
        assert set(actions) == set(ACTIONS), role


@pytest.mark.parametrize(("role", "action", "target", "allowed"), CASES)
def test_role_action_county(role: str, action: str, target: int | None, allowed: bool) -> None:
    # leaders and admins carry no county; give them one anyway to show it does not matter
    assert can(role, OWN, action, target) is allowed


@pytest.mark.parametrize("role", ["contact", "county_leader"])
def test_a_county_role_without_a_county_sees_nothing(role: str) -> None:
    assert not any(can(role, None, action, target) for action in ACTIONS for target in (OWN, OTHER, None))


def test_city_wide_roles_without_a_county() -> None:
    assert can("leader", None, "see", OTHER) and not can("leader", None, "report", OTHER)
    assert can("admin", None, "report", OTHER) and can("admin", None, "invite", None)
    assert is_city_wide("leader") and is_city_wide("admin")
    assert not is_city_wide("contact") and not is_city_wide("county_leader")


def test_unknown_role_may_do_nothing_and_unknown_action_is_an_error() -> None:
    assert not any(can("stranger", OWN, action, OWN) for action in ACTIONS)
    with pytest.raises(ValueError):
        can("admin", None, "delete", None)
