"""shops: named shops with hashed tokens, each order's shop, and webhooks to shops

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:40:00.000000

The orders posted over HTTP before this belong to the unnamed shop that API_TOKENS stands for.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNNAMED = "API_TOKENS"


def upgrade() -> None:
    op.create_table('shops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_key', sa.String(length=192), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('endpoint_disabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shops')),
    sa.UniqueConstraint('name_key', name=op.f('uq_shops_name_key')),
    sa.UniqueConstraint('sid', name=op.f('uq_shops_sid'))
    )
    op.create_table('shop_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('hint', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_shop_tokens_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_shop_tokens'))
    )
    with op.batch_alter_table('shop_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_tokens_shop_id'), ['shop_id'], unique=False)

    op.create_table('webhook_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.Uuid(), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=True),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_webhook_endpoints_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    sa.UniqueConstraint('sid', name=op.f('uq_webhook_endpoints_sid'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_shop_id'), ['shop_id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'sent', 'failed')", name=op.f('ck_webhook_deliveries_state')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_webhook_deliveries_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('message_id', name=op.f('uq_webhook_deliveries_message_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_pending', ['endpoint_id', 'id'], unique=False, sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_webhook_deliveries_endpoint', ['endpoint_id', 'id'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_created_at', ['created_at'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shop_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_orders_shop_id_shops'), 'shops', ['shop_id'], ['id'])
        batch_op.create_index('ix_orders_shop', ['shop_id', 'id'], unique=False)

    _unnamed_shop_takes_the_api_orders()


def _unnamed_shop_takes_the_api_orders() -> None:
    shops = sa.table(
        'shops',
        sa.column('id', sa.Integer),
        sa.column('sid', sa.Uuid),
        sa.column('name', sa.String),
        sa.column('name_key', sa.String),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('endpoint_disabled', sa.Boolean),
    )
    orders = sa.table('orders', sa.column('source', sa.String), sa.column('shop_id', sa.Integer))
    connection = op.get_bind()
    connection.execute(
        shops.insert().values(
            sid=uuid.uuid4(),
            name=UNNAMED,
            name_key='',
            created_at=datetime.now(UTC).replace(tzinfo=None) if connection.dialect.name == 'sqlite' else datetime.now(UTC),
            endpoint_disabled=False,
        )
    )
    unnamed = connection.execute(sa.select(shops.c.id).where(shops.c.name_key == '')).scalar_one()
    connection.execute(orders.update().where(orders.c.source == 'api').values(shop_id=unnamed))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_shop')
        batch_op.drop_constraint(batch_op.f('fk_orders_shop_id_shops'), type_='foreignkey')
        batch_op.drop_column('shop_id')

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_created_at')
        batch_op.drop_index('ix_webhook_deliveries_endpoint')
        batch_op.drop_index('ix_webhook_deliveries_pending', sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_shop_id'))

    op.drop_table('webhook_endpoints')
    with op.batch_alter_table('shop_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_tokens_shop_id'))

    op.drop_table('shop_tokens')
    op.drop_table('shops')
