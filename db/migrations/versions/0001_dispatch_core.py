"""dispatch core

Revision ID: 0001
Revises:
Create Date: 2026-11-28 10:05:20.559137
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('couriers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('free_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'active', 'blocked')", name=op.f('ck_couriers_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_couriers')),
    sa.UniqueConstraint('telegram_id', name=op.f('uq_couriers_telegram_id'))
    )
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.create_index('ix_couriers_free', ['free_since', 'id'], unique=False, sqlite_where=sa.text("status = 'active' AND online AND free_since IS NOT NULL"), postgresql_where=sa.text("status = 'active' AND online AND free_since IS NOT NULL"))

    op.create_table('districts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_districts')),
    sa.UniqueConstraint('name_key', name=op.f('uq_districts_name_key'))
    )
    op.create_table('staff',
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('dispatcher', 'admin')", name=op.f('ck_staff_role')),
    sa.PrimaryKeyConstraint('telegram_id', name=op.f('pk_staff'))
    )
    op.create_table('courier_districts',
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_courier_districts_courier_id_couriers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_courier_districts_district_id_districts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('courier_id', 'district_id', name=op.f('pk_courier_districts'))
    )
    with op.batch_alter_table('courier_districts', schema=None) as batch_op:
        batch_op.create_index('ix_courier_districts_district', ['district_id', 'courier_id'], unique=False)

    op.create_table('invites',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['used_by'], ['couriers.id'], name=op.f('fk_invites_used_by_couriers')),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_invites'))
    )
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=True),
    sa.Column('dispatcher_id', sa.BigInteger(), nullable=False),
    sa.Column('dispatcher_chat_id', sa.BigInteger(), nullable=False),
    sa.Column('dispatcher_locale', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'queued' AND courier_id IS NULL AND assigned_at IS NULL AND completed_at IS NULL AND cancelled_at IS NULL) OR (status = 'assigned' AND courier_id IS NOT NULL AND assigned_at IS NOT NULL AND completed_at IS NULL AND cancelled_at IS NULL) OR (status = 'completed' AND courier_id IS NOT NULL AND assigned_at IS NOT NULL AND completed_at IS NOT NULL AND cancelled_at IS NULL) OR (status = 'cancelled' AND completed_at IS NULL AND cancelled_at IS NOT NULL)", name=op.f('ck_orders_status_matches_timestamps')),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_orders_courier_id_couriers')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_orders_district_id_districts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_completed_at', ['completed_at'], unique=False)
        batch_op.create_index('ix_orders_courier_completed', ['courier_id', 'completed_at'], unique=False, sqlite_where=sa.text("status = 'completed'"), postgresql_where=sa.text("status = 'completed'"))
        batch_op.create_index('ix_orders_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_orders_queue', ['district_id', 'id'], unique=False, sqlite_where=sa.text("status = 'queued'"), postgresql_where=sa.text("status = 'queued'"))
        batch_op.create_index('uq_orders_one_in_progress', ['courier_id'], unique=True, sqlite_where=sa.text("status = 'assigned'"), postgresql_where=sa.text("status = 'assigned'"))

    op.create_table('order_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['couriers.id'], name=op.f('fk_order_events_courier_id_couriers')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_events_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events'))
    )
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_events_order_id'), ['order_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_outbox_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_outbox_pending', ['id'], unique=False, sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending', sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_outbox_order_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_events_order_id'))

    op.drop_table('order_events')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('uq_orders_one_in_progress', sqlite_where=sa.text("status = 'assigned'"), postgresql_where=sa.text("status = 'assigned'"))
        batch_op.drop_index('ix_orders_queue', sqlite_where=sa.text("status = 'queued'"), postgresql_where=sa.text("status = 'queued'"))
        batch_op.drop_index('ix_orders_created_at')
        batch_op.drop_index('ix_orders_courier_completed', sqlite_where=sa.text("status = 'completed'"), postgresql_where=sa.text("status = 'completed'"))
        batch_op.drop_index('ix_orders_completed_at')

    op.drop_table('orders')
    op.drop_table('invites')
    with op.batch_alter_table('courier_districts', schema=None) as batch_op:
        batch_op.drop_index('ix_courier_districts_district')

    op.drop_table('courier_districts')
    op.drop_table('staff')
    op.drop_table('districts')
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.drop_index('ix_couriers_free', sqlite_where=sa.text("status = 'active' AND online AND free_since IS NOT NULL"), postgresql_where=sa.text("status = 'active' AND online AND free_since IS NOT NULL"))

    op.drop_table('couriers')
