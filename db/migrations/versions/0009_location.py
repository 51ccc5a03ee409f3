"""location: couriers' positions during a shift, and orders' pickup and drop-off points

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 21:00:00.000000

Downgrading forgets every position and every order's points.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POINTS = ('pickup', 'dropoff')


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        for point in POINTS:
            batch_op.add_column(sa.Column(f'{point}_lat', sa.Float(), nullable=True))
            batch_op.add_column(sa.Column(f'{point}_lon', sa.Float(), nullable=True))
            batch_op.add_column(sa.Column(f'{point}_address', sa.String(length=256), nullable=True))

    op.create_table('courier_positions',
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('cell', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_id', sa.BigInteger(), nullable=False),
    sa.Column('fresh_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('live_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_courier_positions_courier_id_couriers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('courier_id', name=op.f('pk_courier_positions'))
    )
    with op.batch_alter_table('courier_districts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cell', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_courier_districts_free_near', ['district_id', 'cell'], unique=False, sqlite_where=sa.text('free_since IS NOT NULL'), postgresql_where=sa.text('free_since IS NOT NULL'))


def downgrade() -> None:
    op.drop_table('courier_positions')
    with op.batch_alter_table('courier_districts', schema=None) as batch_op:
        batch_op.drop_index('ix_courier_districts_free_near', sqlite_where=sa.text('free_since IS NOT NULL'), postgresql_where=sa.text('free_since IS NOT NULL'))
        batch_op.drop_column('cell')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        for point in POINTS:
            for column in ('lat', 'lon', 'address'):
                batch_op.drop_column(f'{point}_{column}')
