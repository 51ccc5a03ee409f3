"""http api: public ids (sid) for couriers, orders and districts; couriers without Telegram
until they link it; orders posted over HTTP, with no dispatch chat

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:10:00.000000
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC = ('couriers', 'districts', 'orders')


def upgrade() -> None:
    for table in PUBLIC:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('sid', sa.Uuid(), nullable=True))
        _give_public_ids(table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('sid', existing_type=sa.Uuid(), nullable=False)
            batch_op.create_unique_constraint(batch_op.f(f'uq_{table}_sid'), ['sid'])

    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.alter_column('telegram_id', existing_type=sa.BIGINT(), nullable=True)

    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('courier_id', sa.Integer(), nullable=True))
        batch_op.alter_column('created_by', existing_type=sa.BIGINT(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_invites_courier_id_couriers'), 'couriers', ['courier_id'], ['id'])

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=False, server_default='bot'))
        batch_op.alter_column('dispatcher_id', existing_type=sa.BIGINT(), nullable=True)
        batch_op.alter_column('dispatcher_chat_id', existing_type=sa.BIGINT(), nullable=True)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('source', server_default=None, existing_type=sa.String(length=16), existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_orders_source'), "source IN ('bot', 'api')")


def _give_public_ids(table: str) -> None:
    connection = op.get_bind()
    if connection.dialect.name == 'postgresql':
        op.execute(f'UPDATE {table} SET sid = gen_random_uuid()')
        return
    ids = connection.execute(sa.text(f'SELECT id FROM {table}')).scalars().all()
    if ids:
        connection.execute(
            sa.text(f'UPDATE {table} SET sid = :sid WHERE id = :id'),
            [{'sid': uuid.uuid4().hex, 'id': row_id} for row_id in ids],
        )


def downgrade() -> None:
    op.execute("DELETE FROM order_events WHERE order_id IN (SELECT id FROM orders WHERE dispatcher_chat_id IS NULL)")
    op.execute("DELETE FROM outbox WHERE order_id IN (SELECT id FROM orders WHERE dispatcher_chat_id IS NULL)")
    op.execute("DELETE FROM orders WHERE dispatcher_chat_id IS NULL")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_source'), type_='check')
        batch_op.alter_column('dispatcher_chat_id', existing_type=sa.BIGINT(), nullable=False)
        batch_op.alter_column('dispatcher_id', existing_type=sa.BIGINT(), nullable=False)
        batch_op.drop_column('source')

    op.execute("DELETE FROM invites WHERE created_by IS NULL")
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invites_courier_id_couriers'), type_='foreignkey')
        batch_op.alter_column('created_by', existing_type=sa.BIGINT(), nullable=False)
        batch_op.drop_column('courier_id')

    # Couriers who never linked Telegram cannot be kept without an id: they get a negative one.
    op.execute("UPDATE couriers SET telegram_id = -id WHERE telegram_id IS NULL")
    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.alter_column('telegram_id', existing_type=sa.BIGINT(), nullable=False)

    for table in reversed(PUBLIC):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'uq_{table}_sid'), type_='unique')
            batch_op.drop_column('sid')
