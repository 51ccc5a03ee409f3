"""delivery: outbox rows have a state, a lease and a time for the next attempt; overdue
reminders and daily reports are written once

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The release before this one gave a row up after five attempts.
OLD_MAX_ATTEMPTS = 5


def upgrade() -> None:
    op.create_table('daily_reports',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_daily_reports'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overdue_reminded_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), nullable=False, server_default='pending'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox SET state = 'sent' WHERE sent_at IS NOT NULL")
    op.execute(f"UPDATE outbox SET state = 'failed' WHERE sent_at IS NULL AND attempts >= {OLD_MAX_ATTEMPTS}")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('state', server_default=None, existing_type=sa.String(length=16), existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_outbox_state'), "state IN ('pending', 'sent', 'failed')")
        batch_op.drop_index('ix_outbox_pending', sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))
        batch_op.create_index('ix_outbox_pending', ['chat_id', 'id'], unique=False, sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_outbox_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    op.execute(f"UPDATE outbox SET attempts = {OLD_MAX_ATTEMPTS} WHERE state = 'failed'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_created_at')
        batch_op.drop_index('ix_outbox_pending', sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_outbox_pending', ['id'], unique=False, sqlite_where=sa.text('sent_at IS NULL'), postgresql_where=sa.text('sent_at IS NULL'))
        batch_op.drop_constraint(op.f('ck_outbox_state'), type_='check')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('state')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('overdue_reminded_at')

    op.drop_table('daily_reports')
