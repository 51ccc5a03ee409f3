"""The floor: the writes of one pipeline cycle in raw SQL, with no ORM and no aiogram.

Per cycle, as the bot does them (see benchmarks.pipeline): post an order (check the
dispatcher, find the district, insert it and its event, claim the courier free the longest,
assign, write the courier's notice); deliver it (lease, mark sent); complete it (check the
courier, complete, free the courier, look for a queued order, write the dispatcher's
notice); deliver that. Four transactions. Run with
`.venv/bin/python -m benchmarks.floor [cycles] [postgresql://…/scratch_db]`; the PostgreSQL
database given gets tables of its own (floor_*), dropped at the end.
"""

import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

COURIERS = 100
SCHEMA = """
CREATE TABLE floor_staff (telegram_id BIGINT PRIMARY KEY, role TEXT NOT NULL);
CREATE TABLE floor_districts (id INTEGER PRIMARY KEY, name_key TEXT UNIQUE NOT NULL);
CREATE TABLE floor_couriers (id INTEGER PRIMARY KEY, telegram_id BIGINT UNIQUE NOT NULL,
    free_since DOUBLE PRECISION);
CREATE TABLE floor_courier_districts (courier_id INTEGER, district_id INTEGER,
    free_since DOUBLE PRECISION, PRIMARY KEY (courier_id, district_id));
CREATE INDEX floor_free ON floor_courier_districts (district_id, free_since)
    WHERE free_since IS NOT NULL;
CREATE TABLE floor_orders (id {serial} PRIMARY KEY, district_id INTEGER NOT NULL,
    description TEXT NOT NULL, status TEXT NOT NULL, courier_id INTEGER,
    created_at DOUBLE PRECISION, assigned_at DOUBLE PRECISION, completed_at DOUBLE PRECISION);
CREATE INDEX floor_queue ON floor_orders (district_id, id) WHERE status = 'queued';
CREATE TABLE floor_events (id {serial} PRIMARY KEY, order_id INTEGER, kind TEXT,
    courier_id INTEGER, at DOUBLE PRECISION);
CREATE TABLE floor_outbox (id {serial} PRIMARY KEY, chat_id BIGINT, payload TEXT,
    state TEXT, claimed_until DOUBLE PRECISION, message_id BIGINT);
CREATE INDEX floor_pending ON floor_outbox (chat_id, id) WHERE state = 'pending';
"""
TABLES = ("staff", "districts", "couriers", "courier_districts", "orders", "events", "outbox")

# The cycle's statements, in PostgreSQL's $n style; SQLite gets `?` (see _sqlite).
POST = [
    "SELECT role FROM floor_staff WHERE telegram_id = $1",
    "SELECT id FROM floor_districts WHERE name_key = $1",
    "INSERT INTO floor_orders (district_id, description, status, created_at)"
    " VALUES ($1, $2, 'queued', $3) RETURNING id",
    "INSERT INTO floor_events (order_id, kind, at) VALUES ($1, 'posted', $2)",
    "SELECT courier_id FROM floor_courier_districts WHERE district_id = $1"
    " AND free_since IS NOT NULL ORDER BY free_since LIMIT 1",
    "UPDATE floor_couriers SET free_since = NULL WHERE id = $1 AND free_since IS NOT NULL"
    " RETURNING telegram_id",
    "UPDATE floor_courier_districts SET free_since = NULL WHERE courier_id = $1",
    "UPDATE floor_orders SET status = 'assigned', courier_id = $1, assigned_at = $2"
    " WHERE id = $3 AND status = 'queued'",
    "INSERT INTO floor_events (order_id, kind, courier_id, at) VALUES ($1, 'assigned', $2, $3)",
    "INSERT INTO floor_outbox (chat_id, payload, state) VALUES ($1, $2, 'pending')",
]
DELIVER = [
    "UPDATE floor_outbox SET claimed_until = $1 WHERE state = 'pending' RETURNING id, chat_id",
    "UPDATE floor_outbox SET state = 'sent', message_id = $1 WHERE id = $2",
]
COMPLETE = [
    "SELECT status, courier_id FROM floor_orders WHERE id = $1",
    "SELECT id FROM floor_couriers WHERE telegram_id = $1",
    "UPDATE floor_orders SET status = 'completed', completed_at = $1"
    " WHERE id = $2 AND status = 'assigned' AND courier_id = $3",
    "INSERT INTO floor_events (order_id, kind, courier_id, at) VALUES ($1, 'completed', $2, $3)",
    "UPDATE floor_couriers SET free_since = $1 WHERE id = $2",
    "UPDATE floor_courier_districts SET free_since = $1 WHERE courier_id = $2",
    "SELECT id FROM floor_orders WHERE status = 'queued' AND district_id = $1 ORDER BY id LIMIT 1",
    "INSERT INTO floor_outbox (chat_id, payload, state) VALUES ($1, $2, 'pending')",
]


class Cycle:
    """One cycle over `run(sql, *args) -> first row` and `transaction(work)`."""

    def __init__(
        self,
        run: Callable[..., Awaitable[Any]],
        transaction: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]],
    ) -> None:
        self.run = run
        self.transaction = transaction

    async def __call__(self, n: int) -> None:
        now = float(n)
        order_id = courier = 0

        async def post() -> None:
            nonlocal order_id, courier
            await self.run(POST[0], 2)
            district = (await self.run(POST[1], "north"))[0]
            order_id = (await self.run(POST[2], district, f"parcel {n}", now))[0]
            await self.run(POST[3], order_id, now)
            courier = (await self.run(POST[4], district))[0]
            telegram_id = (await self.run(POST[5], courier))[0]
            await self.run(POST[6], courier)
            await self.run(POST[7], courier, now, order_id)
            await self.run(POST[8], order_id, courier, now)
            await self.run(POST[9], telegram_id, f'{{"order": {order_id}}}')

        async def deliver() -> None:
            row = await self.run(DELIVER[0], now + 60)
            await self.run(DELIVER[1], 1000 + n, row[0])

        async def complete() -> None:
            await self.run(COMPLETE[0], order_id)
            await self.run(COMPLETE[1], 100_000 + courier)
            await self.run(COMPLETE[2], now, order_id, courier)
            await self.run(COMPLETE[3], order_id, courier, now)
            await self.run(COMPLETE[4], now, courier)
            await self.run(COMPLETE[5], now, courier)
            await self.run(COMPLETE[6], 1)
            await self.run(COMPLETE[7], 2, f'{{"done": {order_id}}}')

        for step in (post, deliver, complete, deliver):
            await self.transaction(step)


def _sqlite(sql: str) -> str:
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", "?")
    return sql


def _seed_rows() -> list[tuple[str, list[tuple[Any, ...]]]]:
    return [
        ("INSERT INTO floor_staff VALUES ($1, $2)", [(2, "dispatcher")]),
        ("INSERT INTO floor_districts VALUES ($1, $2)", [(1, "north")]),
        (
            "INSERT INTO floor_couriers VALUES ($1, $2, $3)",
            [(c, 100_000 + c, float(-c)) for c in range(1, COURIERS + 1)],
        ),
        (
            "INSERT INTO floor_courier_districts VALUES ($1, $2, $3)",
            [(c, 1, float(-c)) for c in range(1, COURIERS + 1)],
        ),
    ]


async def on_sqlite(cycles: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "floor.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA.format(serial="INTEGER"))
        for sql, rows in _seed_rows():
            db.executemany(_sqlite(sql), rows)

        sqlite_sql = {sql: _sqlite(sql) for sql in POST + DELIVER + COMPLETE}

        async def run(sql: str, *args: Any) -> Any:
            return db.execute(sqlite_sql[sql], args).fetchone()

        async def transaction(work: Callable[[], Awaitable[None]]) -> None:
            db.execute("BEGIN IMMEDIATE")
            await work()
            db.execute("COMMIT")

        rate = await _time(Cycle(run, transaction), cycles)
        db.close()
    return rate


async def on_postgres(url: str, cycles: int) -> float:
    import asyncpg  # type: ignore[import-untyped]  # only for this database

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(_drop())
        await connection.execute(SCHEMA.format(serial="SERIAL"))
        for sql, rows in _seed_rows():
            await connection.executemany(sql, rows)

        async def run(sql: str, *args: Any) -> Any:
            return await connection.fetchrow(sql, *args)

        async def transaction(work: Callable[[], Awaitable[None]]) -> None:
            async with connection.transaction():
                await work()

        return await _time(Cycle(run, transaction), cycles)
    finally:
        await connection.execute(_drop())
        await connection.close()


def _drop() -> str:
    return "DROP TABLE IF EXISTS " + ", ".join(f"floor_{name}" for name in TABLES)


async def _time(cycle: Cycle, cycles: int) -> float:
    for n in range(1, 21):
        await cycle(n)
    started = time.perf_counter()
    for n in range(21, cycles + 21):
        await cycle(n)
    return cycles / (time.perf_counter() - started)


async def main(cycles: int, postgres_url: str | None) -> None:
    rate = await on_sqlite(cycles)
    print(f"floor, raw sqlite3 (file, WAL), {cycles} cycles: {rate:,.0f} cycles/s")
    if postgres_url:
        rate = await on_postgres(postgres_url, cycles)
        print(f"floor, raw asyncpg, {cycles} cycles: {rate:,.0f} cycles/s")


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    urls = [a for a in sys.argv[1:] if a.startswith("postgresql")]
    asyncio.run(main(numbers[0] if numbers else 2000, urls[0] if urls else None))
