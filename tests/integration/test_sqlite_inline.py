"""SQLite statements run in the event loop's own thread, through aiosqlite's API."""

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db import sqlite_inline
from db.engine import create_engine
from tests.conftest import sqlite_url


async def test_statements_run_in_the_loop_and_no_thread_is_started(tmp_path: Path):
    threads = threading.active_count()
    engine = create_engine(sqlite_url(tmp_path / "inline.sqlite3"))
    seen: list[int] = []
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            raw.driver_connection._conn.create_function(  # type: ignore[union-attr]
                "whoami", 0, lambda: seen.append(threading.get_ident()) or 1
            )
            assert (await connection.execute(text("SELECT whoami()"))).scalar_one() == 1
            assert threading.active_count() == threads
    finally:
        await engine.dispose()
    assert seen == [threading.get_ident()]


async def test_a_read_only_uri_is_opened_read_only(tmp_path: Path):
    path = tmp_path / "ro.sqlite3"
    writer = create_engine(sqlite_url(path))
    async with writer.begin() as connection:
        await connection.execute(text("CREATE TABLE t (x INTEGER)"))
    await writer.dispose()
    reader = create_engine(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    try:
        async with reader.connect() as connection:
            await connection.execution_options(dispatch_transaction="read")
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
            await connection.rollback()
            with pytest.raises(OperationalError, match="readonly"):
                await connection.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        await reader.dispose()


async def test_an_aiosqlite_whose_private_parts_changed_is_named_at_start(
    monkeypatch: pytest.MonkeyPatch,
):
    """Were a new aiosqlite to change what this module relies on, a statement could hang:
    the check at start gives up within seconds, in one line."""
    await sqlite_inline.self_test()  # this one works

    async def never(*_: object, **__: object) -> object:
        await asyncio.Event().wait()

    monkeypatch.setattr(sqlite_inline.InlineConnection, "_execute", never)
    monkeypatch.setattr(sqlite_inline, "SELF_TEST_SECONDS", 0.2)
    with pytest.raises(sqlite_inline.UnsupportedDriver, match="install the version pinned"):
        await sqlite_inline.self_test()
