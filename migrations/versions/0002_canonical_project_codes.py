"""canonical project codes: the code column holds MAX_CODE_LENGTH (40) characters, and stored codes
take their canonical form (bot/domain/project_code.py) wherever that collides with no other project.

Revision ID: 0002
Revises: 0001
"""

import logging
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.domain.project_code import canonical_code

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
PROJECTS = sa.table("projects", sa.column("id", sa.Integer), sa.column("code", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.alter_column("code", existing_type=sa.String(length=32), type_=sa.String(length=40),
                           existing_nullable=False)
    bind = op.get_bind()
    by_canonical: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pid, code in bind.execute(sa.select(PROJECTS.c.id, PROJECTS.c.code)):
        by_canonical[canonical_code(code)].append((pid, code))
    # A canonical code shared by two projects (`hc-007` and `HC-007` imported before this rule) is left
    # as it is: both stay reachable by their exact spelling, and renaming either would merge them in the
    # reader's eyes. Every other target is unique, so no update can meet another row's code.
    for canonical, rows in by_canonical.items():
        if len(rows) > 1:
            log.warning("project codes %s all read as %s; left as they are", [c for _, c in rows], canonical)
            continue
        pid, code = rows[0]
        if canonical and canonical != code and len(canonical) <= 40:
            bind.execute(sa.update(PROJECTS).where(PROJECTS.c.id == pid).values(code=canonical))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.alter_column("code", existing_type=sa.String(length=40), type_=sa.String(length=32),
                           existing_nullable=False)
