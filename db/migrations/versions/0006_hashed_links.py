"""hashed links: an invite or courier link is stored as the SHA-256 of its token, so a copy
of the database opens no one's account

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:55:00.000000

The downgrade keeps the digests: the links made before it stop working.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.alter_column('token', new_column_name='token_hash', existing_type=sa.String(64))
    invites = sa.table('invites', sa.column('token_hash', sa.String))
    connection = op.get_bind()
    for (token,) in connection.execute(sa.select(invites.c.token_hash)).all():
        digest = hashlib.sha256(token.encode()).hexdigest()
        connection.execute(
            invites.update().where(invites.c.token_hash == token).values(token_hash=digest)
        )


def downgrade() -> None:
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.alter_column('token_hash', new_column_name='token', existing_type=sa.String(64))
