"""Does assigning an order slow down as the business grows? Prints milliseconds per order.

For 100 to 100,000 couriers it times the ways an order is assigned. First, with nothing
queued: post an order that a free courier takes at once (its completion untimed); then the
same with a pickup point, to the nearest free courier by their positions. Then, with 10,000
orders queued in the district: a courier's Complete, which hands them the oldest one.
District 1 has five free couriers; every other courier carries an order elsewhere; every
courier has a fresh position, all within 15 km of the city centre. At the largest size it
prints the plans of the three hot queries, as the database chose them. Run with
`.venv/bin/python -m benchmarks.dispatch_scaling [rounds] [postgresql+asyncpg://…/scratch_db]`;
the PostgreSQL database given is wiped.
"""

import asyncio
import math
import random
import sys
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.common import insert_in_batches, reset_postgres
from db.engine import create_engine
from db.migrate import upgrade
from db.models import (
    Courier,
    CourierPosition,
    District,
    Order,
    Point,
    StaffMember,
    courier_districts,
)
from db.uow import UnitOfWorkFactory
from services import geo, orders
from services.orders import Places

DISPATCHER = 1
FREE = 5  # couriers free in district 1; every other one carries an order
DISTRICTS = 50
COURIERS = [100, 1_000, 10_000, 100_000]
QUEUED = 10_000
CENTRE = Point(52.52, 13.405)
SPREAD_M = 15_000


def somewhere(rng: random.Random) -> Point:
    """A point within SPREAD_M of the centre, near enough uniformly."""
    metres, bearing = SPREAD_M * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = CENTRE.lat + metres * math.cos(bearing) / 111_320
    lon = CENTRE.lon + metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return Point(lat, lon)


async def fill(uow_factory: UnitOfWorkFactory, couriers: int) -> None:
    """District 1 has five free couriers; everyone else carries an order elsewhere."""
    now = datetime.now(UTC)
    uow = uow_factory()
    async with uow.write():
        run = uow.session.execute
        await run(
            insert(StaffMember), [{"telegram_id": DISPATCHER, "role": "admin", "created_at": now}]
        )
        await run(
            insert(District),
            [
                {"id": d, "name": f"D{d}", "name_key": f"d{d}", "created_at": now}
                for d in range(1, DISTRICTS + 1)
            ],
        )
        await insert_in_batches(
            run,
            Courier,
            [
                {
                    "id": c,
                    "telegram_id": 10_000 + c,
                    "name": f"C{c}",
                    "status": "active",
                    "online": True,
                    "free_since": now if c <= FREE else None,
                    "created_at": now,
                }
                for c in range(1, couriers + 1)
            ],
        )
        rng = random.Random(couriers)
        spots = {c: somewhere(rng) for c in range(1, couriers + 1)}
        cells = {c: geo.cell_of(spot.lat, spot.lon) for c, spot in spots.items()}
        await insert_in_batches(
            run,
            courier_districts,
            [
                {
                    "courier_id": c,
                    "district_id": 1 if c <= FREE else 2 + c % (DISTRICTS - 1),
                    "free_since": now if c <= FREE else None,
                    "cell": cells[c],
                }
                for c in range(1, couriers + 1)
            ],
        )
        await insert_in_batches(
            run,
            CourierPosition,
            [
                {
                    "courier_id": c,
                    "lat": spot.lat,
                    "lon": spot.lon,
                    "cell": cells[c],
                    "at": now,
                    "fresh_until": now + timedelta(days=1),
                }
                for c, spot in spots.items()
            ],
        )
        busy = [
            {
                "district_id": 2 + c % (DISTRICTS - 1),
                "description": "x",
                "status": "assigned",
                "courier_id": c,
                "dispatcher_id": DISPATCHER,
                "dispatcher_chat_id": DISPATCHER,
                "source": "bot",
                "created_at": now - timedelta(hours=1),
                "assigned_at": now - timedelta(hours=1),
            }
            for c in range(6, couriers + 1)
        ]
        await insert_in_batches(uow.session.execute, Order, busy)
        await uow.commit()
    await _analyze(uow_factory)


async def add_queue(uow_factory: UnitOfWorkFactory, count: int) -> None:
    """`count` orders waiting in district 1, for its couriers as they free up."""
    now = datetime.now(UTC)
    waiting = [
        {
            "district_id": 1,
            "description": "waiting",
            "status": "queued",
            "dispatcher_id": DISPATCHER,
            "dispatcher_chat_id": DISPATCHER,
            "source": "bot",
            "created_at": now,
        }
        for q in range(count)
    ]
    uow = uow_factory()
    async with uow.write():
        await insert_in_batches(uow.session.execute, Order, waiting)
        await uow.commit()
    await _analyze(uow_factory)


async def _analyze(uow_factory: UnitOfWorkFactory) -> None:
    """Statistics, as PostgreSQL's autovacuum keeps them. The bot never runs ANALYZE on
    SQLite, and with its statistics SQLite would scan the orders table, in id order, for the
    first queued order of a district holding most of the queue (docs/benchmarks.md)."""
    uow = uow_factory()
    if uow_factory.engine.dialect.name != "postgresql":
        return
    async with uow.write():
        await uow.session.execute(text("ANALYZE"))
        await uow.commit()


async def time_taking_the_queue(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory, rounds: int
) -> float:
    """Milliseconds for a courier's Complete that also hands them the oldest queued order of
    their district: the queue lookup and the assignment, with the whole queue waiting."""
    carrying = {}  # courier's Telegram id -> the order they carry
    for _ in range(FREE):
        order = await orders.post_order_text(uow_factory(), DISPATCHER, DISPATCHER, "D1 parcel")
        assert order.courier_telegram_id is not None
        carrying[order.courier_telegram_id] = order.id
    took = 0.0
    for n in range(rounds):
        courier = sorted(carrying)[n % FREE]
        started = time.perf_counter()
        await orders.complete_order(uow_factory(), courier, carrying[courier])
        took += time.perf_counter() - started
        carrying[courier] = await _carried_by(engine, courier)
    return took / rounds * 1000


async def _carried_by(engine: AsyncEngine, telegram_id: int) -> int:
    query = text(
        "SELECT orders.id FROM orders JOIN couriers ON couriers.id = orders.courier_id"
        " WHERE couriers.telegram_id = :courier AND orders.status = 'assigned'"
    )
    async with engine.connect() as connection:
        order_id = (await connection.execute(query, {"courier": telegram_id})).scalar_one()
    return int(order_id)


async def time_assignment(uow_factory: UnitOfWorkFactory, rounds: int) -> float:
    """Milliseconds to post an order that is assigned at once (its completion untimed)."""
    took = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        order = await orders.post_order_text(uow_factory(), DISPATCHER, DISPATCHER, "D1 parcel")
        took += time.perf_counter() - started
        assert order.courier_telegram_id is not None, "the order should be assigned at once"
        await orders.complete_order(uow_factory(), order.courier_telegram_id, order.id)
    return took / rounds * 1000


async def time_nearest(uow_factory: UnitOfWorkFactory, rounds: int) -> float:
    """Milliseconds to post an order with a pickup point, which the nearest free courier
    takes at once (its completion untimed)."""
    rng = random.Random(rounds)
    took = 0.0
    for _ in range(rounds):
        places = Places(pickup=somewhere(rng))
        started = time.perf_counter()
        order = await orders.post_order(
            uow_factory(), DISPATCHER, DISPATCHER, 1, "parcel", places=places
        )
        took += time.perf_counter() - started
        assert order.courier_telegram_id is not None, "the order should be assigned at once"
        await orders.complete_order(uow_factory(), order.courier_telegram_id, order.id)
    return took / rounds * 1000


async def with_plans(engine: AsyncEngine, work: Awaitable[float]) -> tuple[float, list[str]]:
    """What `work` returns, and the plans of the queries it ran that find a free courier and
    the oldest queued order (each kind once)."""
    seen: dict[str, tuple[str, Any]] = {}

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if (
            ("free_since IS NOT NULL" in statement and "ORDER BY" in statement)
            or ("'queued'" in statement and statement.lstrip().startswith("SELECT"))
            or ("BETWEEN" in statement and "courier_positions" in statement)
        ):
            seen.setdefault(statement, (statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        result = await work
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = []
    async with engine.connect() as connection:
        for statement, parameters in seen.values():
            rows = await connection.exec_driver_sql(explain + statement, parameters)
            lines = [str(row[-1]) for row in rows]
            plans.append(" ".join(statement.split())[:90] + "...\n    " + "\n    ".join(lines))
    return result, plans


async def measure(url_template: str, rounds: int) -> None:
    """`url_template` with {size} in it: a database per size (PostgreSQL's is wiped)."""
    for couriers in COURIERS:
        url = url_template.format(size=couriers)
        if url.startswith("postgresql"):
            await reset_postgres(url)
        await upgrade(url)
        engine = create_engine(url)
        uow_factory = UnitOfWorkFactory(engine)
        try:
            await fill(uow_factory, couriers)
            idle = await time_assignment(uow_factory, rounds)
            nearest, near_plans = await with_plans(engine, time_nearest(uow_factory, rounds))
            await add_queue(uow_factory, QUEUED)
            taking = time_taking_the_queue(engine, uow_factory, rounds)
            queued, plans = await with_plans(engine, taking)
            print(
                f"{engine.dialect.name:<10} {couriers:>9,} {idle:>8.2f} {nearest:>10.2f}"
                f" {queued:>12.2f}"
            )
            if couriers == COURIERS[-1]:
                for plan in [*plans, *near_plans[:1]]:
                    print("  " + plan)
        finally:
            await engine.dispose()


async def main(rounds: int, postgres_url: str | None, sizes: list[int]) -> None:
    COURIERS[:] = sizes
    print(f"{'backend':<10} {'couriers':>9} {'post ms':>8} {'nearest ms':>10} {'complete ms':>12}")
    print(
        "  post: taken at once; nearest: the same with a pickup point;"
        f" complete: takes the oldest of {QUEUED:,} queued"
    )
    with tempfile.TemporaryDirectory() as folder:
        await measure(f"sqlite+aiosqlite:///{Path(folder)}/bench-{{size}}.sqlite3", rounds)
    if postgres_url:
        await measure(postgres_url, rounds)


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    urls = [a for a in sys.argv[1:] if a.startswith("postgresql")]
    asyncio.run(
        main(numbers[0] if numbers else 200, urls[0] if urls else None, numbers[1:] or COURIERS)
    )
