"""Ledger fields as the dossier records them: typed values to and from the text kept in `changes`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bot.domain.states import ProjectStatus
from bot.store.models import Change, Project

# The project fields a dossier tracks, with the type their text form turns back into.
TRACKED: dict[str, type] = {
    "name": str,
    "county_id": int,
    "category": str,
    "unit": str,
    "planned_start": dt.date,
    "planned_finish": dt.date,
    "investment": Decimal,
    "status": ProjectStatus,
    "progress": int,
    "investment_done": Decimal,
    "actual_start": dt.date,
    "actual_finish": dt.date,
    "notes": str,
}


def to_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    return str(value)


def from_text(field: str, text: str | None) -> Any:
    if text is None:
        return None
    kind = TRACKED[field]
    if kind is dt.date:
        return dt.date.fromisoformat(text)
    if kind is Decimal:
        return Decimal(text)
    if kind is int:
        return int(text)
    if kind is ProjectStatus:
        return ProjectStatus(text)
    return text


def same(a: object, b: object) -> bool:
    """Equal as the ledger sees them (Decimal 10 == 10.00, '' == None for text)."""
    return (to_text(a) or None) == (to_text(b) or None)


def apply_fields(
    project: Project,
    values: Mapping[str, Any],
    *,
    source: str,
    at: dt.datetime,
    person_id: int | None = None,
    report_id: int | None = None,
) -> list[Change]:
    """Set the fields that differ and return one Change per field (not yet added to a session)."""
    changes: list[Change] = []
    for field, new in values.items():
        if field not in TRACKED:
            raise KeyError(f"untracked field {field}")
        old = getattr(project, field)
        if same(old, new):
            continue
        setattr(project, field, new)
        changes.append(
            Change(
                project_id=project.id,
                at=at,
                source=source,
                person_id=person_id,
                report_id=report_id,
                field=field,
                old=to_text(old),
                new=to_text(new),
            )
        )
    if changes:
        project.updated_at = at
    return changes
