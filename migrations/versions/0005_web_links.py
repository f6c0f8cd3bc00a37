"""web cockpit links: a per-person generation, so revoking stops every earlier link

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('web_access',
    sa.Column('person_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('revoked_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_web_access_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_web_access'))
    )


def downgrade() -> None:
    op.drop_table('web_access')
