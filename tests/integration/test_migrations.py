"""The migrations go up, down to nothing, and up again, and match the models."""

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from db.migrate import alembic_config
from db.models import Base
from tests.conftest import NO_POSTGRES, sqlite_url

T = TypeVar("T")
TABLES = {
    "alembic_version",
    "courier_districts",
    "couriers",
    "daily_reports",
    "districts",
    "invites",
    "order_events",
    "orders",
    "outbox",
    "staff",
}


def inspect_database(url: str, look: Callable[[Connection], T]) -> T:
    """Run a synchronous look at the database (tests here are synchronous, as Alembic is)."""

    async def run() -> T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def tables(url: str) -> set[str]:
    return inspect_database(url, lambda c: set(inspect(c).get_table_names()))


def differences(url: str) -> list[object]:
    return inspect_database(
        url, lambda c: list(compare_metadata(MigrationContext.configure(c), Base.metadata))
    )


def run_admin(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "migrations.sqlite3")
        return
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip(NO_POSTGRES)
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    run_admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        run_admin(url, f'DROP DATABASE "{name}" WITH (FORCE)')


def test_upgrade_downgrade_upgrade(empty_database: str):
    config = alembic_config(empty_database)

    command.upgrade(config, "head")
    assert tables(empty_database) == TABLES
    assert differences(empty_database) == []

    command.downgrade(config, "base")
    assert tables(empty_database) == {"alembic_version"}

    command.upgrade(config, "head")
    assert tables(empty_database) == TABLES
