"""The migrations go up, down to nothing, and up again, and match the models."""

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import create_engine
from db.migrate import alembic_config
from db.models import Base
from db.types import UTCDateTime
from db.uow import UnitOfWorkFactory
from services import invites, orders
from tests.conftest import create_postgres_database, drop_database, sqlite_url
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

T = TypeVar("T")
TABLES = {
    "alembic_version",
    "courier_districts",
    "couriers",
    "daily_reports",
    "districts",
    "idempotency_keys",
    "inbox",
    "invites",
    "offers",
    "courier_positions",
    "order_events",
    "orders",
    "outbox",
    "shop_tokens",
    "shops",
    "staff",
    "webhook_deliveries",
    "webhook_endpoints",
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "migrations.sqlite3")
        return
    # Synchronous, as Alembic is: the database is made and dropped in loops of their own.
    url = asyncio.run(create_postgres_database())
    yield url
    asyncio.run(drop_database(url))


def test_upgrade_downgrade_upgrade(empty_database: str):
    config = alembic_config(empty_database)

    command.upgrade(config, "head")
    assert tables(empty_database) == TABLES
    assert differences(empty_database) == []

    command.downgrade(config, "base")
    assert tables(empty_database) == {"alembic_version"}

    command.upgrade(config, "head")
    assert tables(empty_database) == TABLES


def test_a_database_with_orders_goes_down_and_up_again(empty_database: str):
    """Altering tables that others point at (SQLite copies them) must keep every row."""
    command.upgrade(alembic_config(empty_database), "head")
    asyncio.run(_run_a_little_business(empty_database))
    before = _counts(empty_database)

    command.downgrade(alembic_config(empty_database), "0003")
    command.upgrade(alembic_config(empty_database), "head")

    assert _counts(empty_database) == before
    assert differences(empty_database) == []
    for table in ("couriers", "districts", "orders"):
        sids = inspect_database(
            empty_database, lambda c, t=table: c.exec_driver_sql(f"SELECT sid FROM {t}").all()
        )
        assert len(set(sids)) == len(sids) == before[table]


async def _run_a_little_business(url: str) -> None:
    engine = create_engine(url)
    try:
        desk = Desk(UnitOfWorkFactory(engine))
        await desk.staff_up()
        ids = await desk.add_districts("North", "South")
        await desk.add_courier(1, [ids["North"]])
        await desk.add_courier(2, [ids["South"]])
        for text in ("North pizza", "North sushi", "South tea"):
            await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, text)
    finally:
        await engine.dispose()


def _counts(url: str) -> dict[str, int]:
    names = ("couriers", "districts", "orders", "courier_districts", "order_events", "outbox")
    return {
        name: inspect_database(
            url, lambda c, n=name: c.exec_driver_sql(f"SELECT count(*) FROM {n}").scalar_one()
        )
        for name in names
    }


def test_links_made_before_hashing_keep_working(empty_database: str):
    """0006 stores each token's digest: a link sent before the upgrade still opens."""
    config = alembic_config(empty_database)
    command.upgrade(config, "0005")
    token = "a-link-sent-before-the-upgrade"

    def insert(connection: Connection) -> None:
        at_0005 = sa.table(
            "invites",
            sa.column("token"),
            sa.column("created_at", UTCDateTime()),
            sa.column("expires_at", UTCDateTime()),
        )
        now = datetime.now(UTC)
        connection.execute(
            at_0005.insert().values(token=token, created_at=now, expires_at=now + timedelta(days=1))
        )
        connection.commit()

    inspect_database(empty_database, insert)
    command.upgrade(config, "head")

    async def valid() -> bool:
        engine = create_engine(empty_database)
        uow = UnitOfWorkFactory(engine)()
        try:
            async with uow.read():
                return await invites.valid_invite(uow, token) is not None
        finally:
            await engine.dispose()

    assert asyncio.run(valid())
