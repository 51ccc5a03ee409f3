"""offers: an order is offered to a courier, who accepts or declines before a deadline

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:40:00.000000

Downgrading puts each offered order back in the queue and forgets every offer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = (
    "(status = 'queued' AND courier_id IS NULL AND assigned_at IS NULL AND completed_at IS NULL AND cancelled_at IS NULL)"
    " OR {offered}"
    "(status = 'assigned' AND courier_id IS NOT NULL AND assigned_at IS NOT NULL AND completed_at IS NULL AND cancelled_at IS NULL)"
    " OR (status = 'completed' AND courier_id IS NOT NULL AND assigned_at IS NOT NULL AND completed_at IS NOT NULL AND cancelled_at IS NULL)"
    " OR (status = 'cancelled' AND completed_at IS NULL AND cancelled_at IS NOT NULL)"
)
OFFERED = "(status = 'offered' AND courier_id IS NOT NULL AND assigned_at IS NULL AND completed_at IS NULL AND cancelled_at IS NULL) OR "
HELD = "status IN ('offered', 'assigned')"
ASSIGNED = "status = 'assigned'"


def upgrade() -> None:
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('missed_offers', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refusals', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_constraint(op.f('ck_orders_status_matches_timestamps'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status_matches_timestamps'), STATUS.format(offered=OFFERED))
        batch_op.drop_index('uq_orders_one_in_progress', sqlite_where=sa.text(ASSIGNED), postgresql_where=sa.text(ASSIGNED))
        batch_op.create_index('uq_orders_one_in_progress', ['courier_id'], unique=True, sqlite_where=sa.text(HELD), postgresql_where=sa.text(HELD))

    op.create_table('offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('accepted', 'declined', 'expired', 'withdrawn')", name=op.f('ck_offers_outcome')),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_offers_courier_id_couriers')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_offers_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers'))
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.create_index('ix_offers_courier', ['courier_id', 'offered_at'], unique=False)
        batch_op.create_index('ix_offers_deadline', ['expires_at'], unique=False, sqlite_where=sa.text('outcome IS NULL'), postgresql_where=sa.text('outcome IS NULL'))
        batch_op.create_index('ix_offers_offered_at', ['offered_at'], unique=False)
        batch_op.create_index('ix_offers_order', ['order_id', 'courier_id'], unique=False)
        batch_op.create_index('uq_offers_open_courier', ['courier_id'], unique=True, sqlite_where=sa.text('outcome IS NULL'), postgresql_where=sa.text('outcome IS NULL'))
        batch_op.create_index('uq_offers_open_order', ['order_id'], unique=True, sqlite_where=sa.text('outcome IS NULL'), postgresql_where=sa.text('outcome IS NULL'))


def downgrade() -> None:
    op.drop_table('offers')
    # Offered orders wait again; their couriers are free (their free_since is when they were
    # offered the order: near enough).
    op.execute("UPDATE couriers SET free_since = CURRENT_TIMESTAMP WHERE id IN (SELECT courier_id FROM orders WHERE status = 'offered')")
    op.execute("UPDATE courier_districts SET free_since = (SELECT free_since FROM couriers WHERE couriers.id = courier_districts.courier_id AND couriers.status = 'active' AND couriers.online) WHERE courier_id IN (SELECT courier_id FROM orders WHERE status = 'offered')")
    op.execute("UPDATE orders SET status = 'queued', courier_id = NULL WHERE status = 'offered'")
    op.execute("DELETE FROM order_events WHERE kind IN ('offered', 'declined', 'expired')")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('uq_orders_one_in_progress', sqlite_where=sa.text(HELD), postgresql_where=sa.text(HELD))
        batch_op.create_index('uq_orders_one_in_progress', ['courier_id'], unique=True, sqlite_where=sa.text(ASSIGNED), postgresql_where=sa.text(ASSIGNED))
        batch_op.drop_constraint(op.f('ck_orders_status_matches_timestamps'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status_matches_timestamps'), STATUS.format(offered=''))
        batch_op.drop_column('refusals')
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.drop_column('missed_offers')
