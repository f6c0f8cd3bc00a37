"""state checks: the columns holding a state of bot/domain/states.py accept only its members, by a named
CHECK constraint (ck_<table>_<column>) — project and reported status, roles, a problem's light and
escalation step, an outbox row's state. The column types stay as they were, so no stored value changes.

The values are written out here rather than read from the enums: a migration describes the schema as it
was at its revision, and a state added later comes with its own migration.

A database holding a value outside these lists (the code writes none; a hand-made edit might have) is
not changed: the upgrade stops before touching anything and names the table, column and values to fix.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("not_started", "started", "completed")
ROLES = ("admin", "leader", "county_leader", "contact")
LIGHTS = ("green", "yellow", "red")
OUTBOX_STATES = ("pending", "sending", "sent", "dead", "expired")
STEPS = (0, 1, 2, 3)

# table -> (column, allowed values)
CHECKS: dict[str, tuple[tuple[str, tuple[str, ...] | tuple[int, ...]], ...]] = {
    "projects": (("status", STATUSES),),
    "reports": (("status", STATUSES),),
    "people": (("role", ROLES),),
    "invites": (("role", ROLES),),
    "problems": (("level", LIGHTS), ("step", STEPS)),
    "outbox": (("state", OUTBOX_STATES),),
}


def _condition(column: str, values: tuple[str, ...] | tuple[int, ...]) -> str:
    """The same text as bot.store.models.one_of writes."""
    listed = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in values)
    return f"{column} IN ({listed})"


def _refuse_unknown_values() -> None:
    bind = op.get_bind()
    found = []
    for table, checks in CHECKS.items():
        for column, values in checks:
            col = sa.column(column)
            rows = bind.execute(
                sa.select(col, sa.func.count()).select_from(sa.table(table))
                .where(col.is_not(None), col.not_in(values)).group_by(col)
            ).all()
            found += [f"{table}.{column} = {value!r} ({count} rows)" for value, count in rows]
    if found:
        raise RuntimeError("values no state allows; correct them, then upgrade again: " + "; ".join(found))


def upgrade() -> None:
    _refuse_unknown_values()
    for table, checks in CHECKS.items():
        # SQLite adds a constraint by copying the table (named CHECKs and partial indexes come along)
        with op.batch_alter_table(table) as batch:
            for column, values in checks:
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), _condition(column, values))


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, _values in checks:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
