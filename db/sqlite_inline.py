"""aiosqlite's connection, run in the event loop's own thread instead of a thread of its own.

An indexed SQLite statement takes a few microseconds; handing it to aiosqlite's thread and
back costs some 300 µs, and a use case runs a dozen statements. Here a statement runs where
it is awaited. It never waits on another connection of this process: in WAL mode readers
never wait, and writers take turns on an asyncio lock (db.uow) before `BEGIN IMMEDIATE`.
Another process holding the write lock makes a writer's BEGIN fail at once (the busy
timeout is a few milliseconds), and the unit of work waits with asyncio (db.uow).

This leans on aiosqlite's private parts (its queue `_tx`, `_execute`, `_connect`): `self_test`
checks at start that they still work as expected, and says so in one line if not.
"""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Generator
from functools import partial
from typing import Any
from urllib.parse import urlencode

import aiosqlite
from sqlalchemy.engine import URL

ITER_CHUNK_SIZE = 64
SELF_TEST_SECONDS = 2.0


class UnsupportedDriver(Exception):
    """This aiosqlite is not one this module works with."""


class _RunNow:
    """Stands in for the queue to aiosqlite's thread, which SQLAlchemy's dialect also uses
    directly: each (future, function) put here is run at once."""

    def put_nowait(self, item: tuple["asyncio.Future[Any] | None", Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as error:
            if future is None:
                raise
            future.set_exception(error)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """The same API and SQLAlchemy dialect as aiosqlite; no worker thread is started."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _RunNow()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> "InlineConnection":
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, "InlineConnection"]:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def connector(url: URL, timeout_s: float) -> Callable[[], Awaitable[InlineConnection]]:
    """SQLAlchemy's `async_creator` for a SQLite URL, as its pysqlite dialect reads the URL:
    a `file:` URI (with `uri=true`) keeps its other query parameters."""
    query = {key: value for key, value in url.query.items() if key != "uri"}
    uri = url.query.get("uri") == "true"
    database = url.database or ":memory:"
    if uri and query:
        database += "?" + urlencode(query, doseq=True)
    connect = partial(
        sqlite3.connect,
        database,
        timeout=timeout_s,
        isolation_level=None,
        check_same_thread=False,
        uri=uri,
    )

    async def create() -> InlineConnection:
        return await InlineConnection(connect, ITER_CHUNK_SIZE)

    return create


async def self_test() -> None:
    """A statement on an in-memory database, through the same parts the bot uses; raises
    UnsupportedDriver, in one line, if it fails or does not come back."""
    connect = partial(sqlite3.connect, ":memory:", isolation_level=None, check_same_thread=False)
    try:
        async with asyncio.timeout(SELF_TEST_SECONDS):
            connection = await InlineConnection(connect, ITER_CHUNK_SIZE)
            try:
                async with connection.execute("SELECT 1") as cursor:
                    row = await cursor.fetchone()
            finally:
                await connection.close()
    except Exception as error:
        raise UnsupportedDriver(_unsupported(repr(error))) from None
    if row is None or tuple(row) != (1,):
        raise UnsupportedDriver(_unsupported(f"SELECT 1 gave {row!r}"))


def _unsupported(reason: str) -> str:
    return (
        f"aiosqlite {aiosqlite.__version__} does not work with db/sqlite_inline.py ({reason}):"
        " install the version pinned in requirements.lock"
    )
