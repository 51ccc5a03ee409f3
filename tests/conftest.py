"""Test databases: a fresh SQLite file per test; PostgreSQL too when TEST_POSTGRES_URL is set;
an emptied Redis database when TEST_REDIS_URL is set.

Under pytest-xdist each worker has its own: the PostgreSQL database's name gets the worker's
suffix (test_gw1), and worker n takes the Redis database n below the one given (15, 14, ...).
"""

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from alembic import command
from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.migrate import alembic_config
from db.uow import UnitOfWorkFactory
from services import clock

WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
NO_POSTGRES = "TEST_POSTGRES_URL is not set; PostgreSQL tests need a real server (.ci/run sets it)"
REDIS_URL = os.environ.get("TEST_REDIS_URL")
if REDIS_URL and WORKER:
    _given = urlsplit(REDIS_URL)
    _number = (int(_given.path.strip("/") or 0) - WORKER) % 16  # Redis has databases 0-15
    REDIS_URL = _given._replace(path=f"/{_number}").geturl()
NO_REDIS = "TEST_REDIS_URL is not set; Redis tests need a real server (.ci/run sets it)"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TABLES = (
    "webhook_deliveries, webhook_endpoints, outbox, order_events, invites, orders,"
    " courier_districts, couriers, staff, districts, daily_reports, inbox, idempotency_keys,"
    " shop_tokens, shops"
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database file; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "dispatch.sqlite3"
    command.upgrade(alembic_config(sqlite_url(path)), "head")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test database, emptied and rebuilt from the migrations once per run (whatever an
    earlier run, or an earlier version of the migrations, left in it)."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    url = asyncio.run(_this_workers_database(POSTGRES_URL))
    asyncio.run(_empty_schema(url))
    command.upgrade(alembic_config(url), "head")
    return url


async def _this_workers_database(url: str) -> str:
    """The database given, or for a second xdist worker and on, one beside it of its own."""
    if not WORKER:
        return url
    name = f"{make_url(url).database}_gw{WORKER}"
    with contextlib.suppress(DBAPIError):  # it is there from an earlier run
        await run_admin(url, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def run_admin(url: str, statement: str) -> None:
    """A statement outside any transaction, such as CREATE DATABASE."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def create_postgres_database() -> str:
    """A PostgreSQL database of one's own, empty; its URL. Drop it with drop_database."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    name = f"test_{uuid.uuid4().hex[:12]}"
    await run_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    assert POSTGRES_URL is not None
    await run_admin(POSTGRES_URL, f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture
async def fresh_postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_database(url)


async def _empty_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A Redis database of the tests' own, empty at the start of each test."""
    if not REDIS_URL:
        pytest.skip(NO_REDIS)
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
        yield REDIS_URL
    finally:
        await redis.aclose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    path = tmp_path / "dispatch.sqlite3"
    shutil.copy(sqlite_template, path)
    return sqlite_url(path)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield engine
    await engine.dispose()


@pytest.fixture
def uow_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(engine)


class FakeClock:
    """Stands in for services.clock.utcnow; moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "utcnow", fake)
    return fake


# The longest tests (measured with --durations), longest first. pytest-xdist's `worksteal`
# gives each worker an equal run of the collected tests, and a worker that runs dry steals
# the back half of another's: so each run starts with its share of the long tests, dealt
# round, and short ones make up the rest and are what gets stolen.
LONGEST_FIRST = (
    "tests/e2e/test_instances.py::test_two_instances_keep_every_promise",
    "tests/e2e/test_offers.py::test_offers_answered_at_random",
    "tests/integration/test_concurrency.py::test_concurrent_dispatch_keeps_every_guarantee",
    "tests/api/test_schema_fuzz.py",
    "tests/e2e/test_delivery.py",
    "tests/bot/test_shop_webhooks.py::test_every_event_arrives_once",
    "tests/e2e/test_doors.py",
    "tests/benchmarks/",
    "tests/e2e/test_stories.py",
    "tests/integration/test_concurrency.py",
    "tests/e2e/",
    "tests/deploy/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs on each worker, alike: they must all collect the tests in the same order."""

    def rank(item: pytest.Item) -> int:
        return next((n for n, p in enumerate(LONGEST_FIRST) if item.nodeid.startswith(p)), 99)

    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    ordered = sorted(items, key=rank)
    long = [item for item in ordered if rank(item) < len(LONGEST_FIRST)]
    short = ordered[len(long) :]
    runs: list[list[pytest.Item]] = [long[w::workers] for w in range(workers)]
    for run_index, run in enumerate(runs):
        size = len(items) // workers + (1 if run_index < len(items) % workers else 0)
        taken = max(0, size - len(run))
        run.extend(short[:taken])
        short = short[taken:]
    runs[-1].extend(short)
    items[:] = [item for run in runs for item in run]
