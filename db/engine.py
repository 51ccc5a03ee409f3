"""Engine and session factories, with SQLite set up for concurrent writers."""

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from db.sqlite_inline import connector

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'data' / 'dispatch.sqlite3'}"
# How long a statement may wait in SQLite's busy handler, which sleeps where it runs: in the
# event loop. The bot's writers wait for the write lock in the unit of work instead, with
# asyncio's sleep (db.uow); a migration runs in a thread of its own and may wait longer.
SQLITE_BUSY_TIMEOUT_MS = 5
SQLITE_THREAD_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
# The execution option that tells a session's transactions apart: "write" or "read".
TRANSACTION = "dispatch_transaction"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (also as a `file:` URI); None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database.removeprefix("file:"))


def anchored(url: str) -> str:
    """The URL with a relative SQLite path taken from the project folder, not the current one."""
    path = sqlite_file(url)
    parsed = make_url(url)
    if path is None or path.is_absolute() or str(parsed.database).startswith("file:"):
        return url  # a `file:` URI is taken as written
    return parsed.set(database=str(PROJECT_ROOT / path)).render_as_string(hide_password=False)


def make_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite file if it is missing (OSError if it cannot be)."""
    if (path := sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def create_engine(
    url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any
) -> AsyncEngine:
    """Build the engine for `url`; SQLite gets WAL, busy_timeout, foreign keys and our BEGINs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_pre_ping=True, connect_args={"timeout": CONNECT_TIMEOUT_S}, **kwargs
        )
    engine = create_async_engine(
        url, async_creator=connector(parsed, busy_timeout_ms / 1000), **kwargs
    )
    _begin_transactions_ourselves(engine, busy_timeout_ms)
    return engine


def _begin_transactions_ourselves(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """SQLAlchemy's documented pysqlite recipe: the driver stays out, we BEGIN ourselves.

    A writing transaction takes the write lock up front (BEGIN IMMEDIATE), so it never fails
    with "database is locked" halfway; where another process holds the lock, BEGIN fails at
    once and the unit of work waits and tries again.
    A reading one, and any connection that does not say (a check at start, a migration, a
    test looking at the database), is a plain deferred BEGIN: in WAL mode a reader never
    waits for a writer.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(TRANSACTION) == "write"
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


async def ping(engine: AsyncEngine) -> None:
    """Ask the database the simplest question, in a reading transaction (on SQLite it takes no
    write lock, so it never waits for a writer); raises if it cannot answer."""
    async with engine.connect() as connection:
        await connection.execution_options(**{TRANSACTION: "read"})
        await connection.execute(text("SELECT 1"))


def session_factory(engine: AsyncEngine, *, writes: bool) -> async_sessionmaker[AsyncSession]:
    """Sessions whose transactions may write, or only read (READ ONLY on PostgreSQL)."""
    options: dict[str, Any] = {TRANSACTION: "write" if writes else "read"}
    if not writes and engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        execution_options=options,
        sync_session_class=HoldingSession,
    )


class HoldingSession(Session):
    """A session that holds on to every row it has loaded or written until it closes.

    SQLAlchemy's identity map forgets a row nobody refers to any more. Our sessions last one
    transaction, so keeping them costs little, and a row the transaction already has (the
    courier an UPDATE … RETURNING just claimed, say) is never asked for again.
    """


@event.listens_for(HoldingSession, "loaded_as_persistent")
@event.listens_for(HoldingSession, "pending_to_persistent")
def _hold(session: Session, instance: object) -> None:
    session.info.setdefault("held", []).append(instance)


def is_locked(error: OperationalError) -> bool:
    """SQLite's "database is locked": another connection holds the lock asked for."""
    return "database is locked" in str(error.orig) or "database table is locked" in str(error.orig)
