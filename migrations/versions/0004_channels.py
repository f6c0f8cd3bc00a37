"""channels: group robots and e-mail that get digests and alerts; outbox rows for them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.store.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('county_id', sa.Integer(), nullable=True),
    sa.Column('sends', sa.String(length=60), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_ok_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('last_error_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['county_id'], ['counties.id'], name=op.f('fk_channels_county_id_counties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels')),
    sa.UniqueConstraint('name', name=op.f('uq_channels_name'))
    )
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channels_county_id'), ['county_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_channel_id'), ['channel_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_channel_id_channels'), 'channels', ['channel_id'], ['id'],
                                    ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_channel_id_channels'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_channel_id'))
        batch_op.drop_column('channel_id')

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channels_county_id'))

    op.drop_table('channels')
