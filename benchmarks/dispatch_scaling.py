"""Does dispatching slow down as the business grows? Prints milliseconds per operation.

For a small and a large database (couriers, districts, order history, waiting orders) it times
the hot path: post an order that is assigned at once, then complete it. Run with
`.venv/bin/python -m benchmarks.dispatch_scaling [postgresql+asyncpg://...]`.
"""

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

from db.engine import create_engine
from db.migrate import upgrade
from db.models import Courier, District, Order, StaffMember, courier_districts
from db.uow import UnitOfWorkFactory
from services import orders

DISPATCHER = 1
DISTRICTS = 50
ROUNDS = 300
SIZES = [(100, 1_000), (10_000, 200_000)]  # (couriers, orders in history)


async def fill(uow_factory: UnitOfWorkFactory, couriers: int, history: int) -> None:
    """District 1 has five free couriers; everyone else is busy; history and queues elsewhere."""
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
        await run(
            insert(Courier),
            [
                {
                    "id": c,
                    "telegram_id": 10_000 + c,
                    "name": f"C{c}",
                    "status": "active",
                    "online": True,
                    "free_since": now if c <= 5 else None,
                    "created_at": now,
                }
                for c in range(1, couriers + 1)
            ],
        )
        await run(
            insert(courier_districts),
            [
                {
                    "courier_id": c,
                    "district_id": 1 if c <= 5 else 2 + c % (DISTRICTS - 1),
                    "free_since": now if c <= 5 else None,
                }
                for c in range(1, couriers + 1)
            ],
        )
        old = now - timedelta(days=30)
        rows = []
        for n in range(1, history + 1):
            busy = 5 < n <= couriers  # one order in progress per busy courier
            rows.append(
                {
                    "id": n,
                    "district_id": 2 + n % (DISTRICTS - 1),
                    "description": "x",
                    "status": "assigned" if busy else "completed",
                    "courier_id": n if busy else 6 + n % max(couriers - 5, 1),
                    "dispatcher_id": DISPATCHER,
                    "dispatcher_chat_id": DISPATCHER,
                    "source": "bot",
                    "created_at": old,
                    "assigned_at": old,
                    "completed_at": None if busy else old,
                }
            )
        rows += [
            {
                "id": history + q,
                "district_id": 2 + q % (DISTRICTS - 1),
                "description": "waiting",
                "status": "queued",
                "courier_id": None,
                "dispatcher_id": DISPATCHER,
                "dispatcher_chat_id": DISPATCHER,
                "source": "bot",
                "created_at": now,
                "assigned_at": None,
                "completed_at": None,
            }
            for q in range(1, history // 100 + 1)
        ]
        for start in range(0, len(rows), 5_000):
            await run(insert(Order), rows[start : start + 5_000])
        await uow.commit()
    async with uow.write():
        if uow.session.get_bind().dialect.name == "postgresql":
            await uow.session.execute(
                text("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))")
            )
            await uow.session.execute(text("ANALYZE"))
            await uow.commit()


async def measure(url: str, couriers: int, history: int) -> tuple[float, float]:
    await upgrade(url)
    engine = create_engine(url)
    uow_factory = UnitOfWorkFactory(engine)
    try:
        await fill(uow_factory, couriers, history)
        post_time = complete_time = 0.0
        for _ in range(ROUNDS):
            started = time.perf_counter()
            order = await orders.post_order_text(uow_factory(), DISPATCHER, DISPATCHER, "D1 parcel")
            posted = time.perf_counter()
            assert order.courier_telegram_id is not None, "the order should be assigned at once"
            await orders.complete_order(uow_factory(), order.courier_telegram_id, order.id)
            complete_time += time.perf_counter() - posted
            post_time += posted - started
        return post_time / ROUNDS * 1000, complete_time / ROUNDS * 1000
    finally:
        await engine.dispose()


async def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def main(postgres_url: str | None) -> None:
    print(f"{'backend':<10} {'couriers':>9} {'orders':>8} {'post ms':>8} {'complete ms':>12}")
    for couriers, history in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"
            post, complete = await measure(url, couriers, history)
        print(f"{'sqlite':<10} {couriers:>9} {history:>8} {post:>8.2f} {complete:>12.2f}")
        if postgres_url:
            await reset_postgres(postgres_url)
            post, complete = await measure(postgres_url, couriers, history)
            print(f"{'postgres':<10} {couriers:>9} {history:>8} {post:>8.2f} {complete:>12.2f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
