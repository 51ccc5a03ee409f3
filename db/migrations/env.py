"""Alembic environment: async engine, URL from the caller or from DATABASE_URL."""

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import (
    DEFAULT_DATABASE_URL,
    SQLITE_THREAD_BUSY_TIMEOUT_MS,
    anchored,
    create_engine,
    make_sqlite_folder,
)
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
    engine = create_engine(url, busy_timeout_ms=SQLITE_THREAD_BUSY_TIMEOUT_MS)  # in a thread
    if engine.dialect.name == "sqlite":
        _rebuild_tables_freely(engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            if engine.dialect.name == "sqlite":
                await connection.run_sync(_check_foreign_keys)
            await connection.commit()
    finally:
        await engine.dispose()


def _rebuild_tables_freely(engine: AsyncEngine) -> None:
    """SQLite alters a table by copying it and dropping the old one, which foreign keys
    pointing at it forbid while they are enforced; the check comes after, in one go."""

    @event.listens_for(engine.sync_engine, "connect")
    def keys_off(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")


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
