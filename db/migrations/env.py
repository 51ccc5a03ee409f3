"""Alembic environment: async engine, URL from the caller or from DATABASE_URL."""

import asyncio
import os

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.engine import DEFAULT_DATABASE_URL, anchored, create_engine, make_sqlite_folder
from db.models import Base

# Instances starting together on PostgreSQL migrate one after the other: the others wait
# here, then find the schema already current.
MIGRATION_LOCK = 20_261_128


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        context.run_migrations()


async def _run_async(url: str) -> None:
    make_sqlite_folder(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.attributes.get("url") or os.environ.get(
        "DATABASE_URL", DEFAULT_DATABASE_URL
    )
    asyncio.run(_run_async(anchored(url)))


main()
