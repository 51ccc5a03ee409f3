"""promises: free couriers per district, orders remember whom they were taken from,
outbox rows name their notice and courier, longer name keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:51:29.076584
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FREE = "status = 'active' AND online AND free_since IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('courier_districts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('free_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_courier_districts_free', ['district_id', 'free_since', 'courier_id'], unique=False, sqlite_where=sa.text('free_since IS NOT NULL'), postgresql_where=sa.text('free_since IS NOT NULL'))
    op.execute(
        "UPDATE courier_districts SET free_since = (SELECT free_since FROM couriers"
        f" WHERE couriers.id = courier_districts.courier_id AND {FREE})"
    )

    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.drop_index('ix_couriers_free', sqlite_where=sa.text(FREE), postgresql_where=sa.text(FREE))

    with op.batch_alter_table('districts', schema=None) as batch_op:
        batch_op.alter_column('name_key',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.String(length=192),
               existing_nullable=False)
    _rekey_districts()

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('taken_from_courier_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_orders_taken_from_courier_id_couriers'), 'couriers', ['taken_from_courier_id'], ['id'])

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('kind', new_column_name='notice', existing_type=sa.String(length=32), existing_nullable=False)
        batch_op.add_column(sa.Column('courier_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_courier_id'), ['courier_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_courier_id_couriers'), 'couriers', ['courier_id'], ['id'])


def _rekey_districts() -> None:
    """Name keys become NFKC case folds; a key two names would now share stays as it was."""
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, name, name_key FROM districts ORDER BY id")).all()
    taken = {key for _, _, key in rows}
    for district_id, name, old in rows:
        folded = " ".join(unicodedata.normalize("NFKC", name).split()).casefold()
        new = unicodedata.normalize("NFKC", folded)
        if new != old and new not in taken:
            connection.execute(
                sa.text("UPDATE districts SET name_key = :key WHERE id = :id"),
                {"key": new, "id": district_id},
            )
            taken.add(new)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_courier_id_couriers'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_courier_id'))
        batch_op.drop_column('courier_id')
        batch_op.alter_column('notice', new_column_name='kind', existing_type=sa.String(length=32), existing_nullable=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_taken_from_courier_id_couriers'), type_='foreignkey')
        batch_op.drop_column('taken_from_courier_id')

    # Keys longer than the old column are cut: a downgrade keeps names, not every key.
    op.execute("UPDATE districts SET name_key = substr(name_key, 1, 64) WHERE length(name_key) > 64")
    with op.batch_alter_table('districts', schema=None) as batch_op:
        batch_op.alter_column('name_key',
               existing_type=sa.String(length=192),
               type_=sa.VARCHAR(length=64),
               existing_nullable=False)

    with op.batch_alter_table('couriers', schema=None) as batch_op:
        batch_op.create_index('ix_couriers_free', ['free_since', 'id'], unique=False, sqlite_where=sa.text(FREE), postgresql_where=sa.text(FREE))

    with op.batch_alter_table('courier_districts', schema=None) as batch_op:
        batch_op.drop_index('ix_courier_districts_free', sqlite_where=sa.text('free_since IS NOT NULL'), postgresql_where=sa.text('free_since IS NOT NULL'))
        batch_op.drop_column('free_since')
