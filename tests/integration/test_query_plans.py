"""The two hot queries read an index on both databases, never a whole table.

Finding a free courier of a district and the oldest order a courier may take run on every
post and every completion. Each is captured as the repository issues it and explained by
the database itself; on PostgreSQL also as the generic plan a prepared statement ends up with.
"""

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import Courier, District, Order, courier_districts
from db.uow import UnitOfWork, UnitOfWorkFactory

DISTRICTS = 50
COURIERS = 20_000
ORDERS = 20_000
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OUR_TABLES = re.compile(r"\b(couriers|courier_districts|orders)\b")
# SQLite: SEARCH seeks in an index; SCAN reads a whole table or a whole index.
# PostgreSQL: an index scan with a condition seeks; anything else on our tables reads it all.
SEEK = re.compile(
    r"^SEARCH \w+ USING (COVERING )?INDEX |^Index (Only )?Scan on \w+ using \w+ where "
)


@pytest.fixture
async def filled(engine: AsyncEngine, uow_factory: UnitOfWorkFactory) -> AsyncEngine:
    """A business big enough for PostgreSQL's planner to prefer an index when it can."""
    async with engine.begin() as connection:
        await connection.execute(
            insert(District),
            [
                {"id": d, "name": f"D{d}", "name_key": f"d{d}", "created_at": NOW}
                for d in range(1, DISTRICTS + 1)
            ],
        )
        await connection.execute(
            insert(Courier),
            [
                {
                    "id": c,
                    "telegram_id": c,
                    "name": f"C{c}",
                    "status": "active",
                    "online": True,
                    "free_since": NOW - timedelta(seconds=c) if c % 10 == 0 else None,
                    "created_at": NOW,
                }
                for c in range(1, COURIERS + 1)
            ],
        )
        await connection.execute(
            insert(courier_districts),
            [
                {
                    "courier_id": c,
                    "district_id": 1 + c % DISTRICTS,
                    "free_since": NOW - timedelta(seconds=c) if c % 10 == 0 else None,
                }
                for c in range(1, COURIERS + 1)
            ],
        )
        await connection.execute(
            insert(Order),
            [
                {
                    "id": n,
                    "district_id": 1 + n % DISTRICTS,
                    "description": "x",
                    "status": "queued" if n % 4 == 0 else "completed",
                    "courier_id": None if n % 4 == 0 else n,
                    "dispatcher_id": 1,
                    "dispatcher_chat_id": 1,
                    "source": "bot",
                    "created_at": NOW,
                    "assigned_at": None if n % 4 == 0 else NOW,
                    "completed_at": None if n % 4 == 0 else NOW,
                }
                for n in range(1, ORDERS + 1)
            ],
        )
        await connection.execute(text("ANALYZE"))
    return engine


async def captured(
    engine: AsyncEngine,
    uow_factory: UnitOfWorkFactory,
    query: Callable[[UnitOfWork], Awaitable[Any]],
) -> tuple[str, Any]:
    """The one SQL statement (and its parameters) that a repository call sends."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        uow = uow_factory()
        async with uow.read():
            await query(uow)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    (statement,) = [s for s in sent if s[0].lstrip().upper().startswith("SELECT")]
    return statement


async def sqlite_plan(connection: AsyncConnection, statement: str, parameters: Any) -> list[str]:
    rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
    return [str(row[-1]) for row in rows]


def steps(plan: dict[str, Any]) -> Iterator[str]:
    """Every node of a PostgreSQL plan, as "<node type> on <table> using <index> where <cond>"."""
    yield (
        f"{plan['Node Type']} on {plan.get('Relation Name')} using {plan.get('Index Name')}"
        f" where {plan.get('Index Cond')}"
    )
    for child in plan.get("Plans", []):
        yield from steps(child)


async def postgres_plans(
    connection: AsyncConnection, statement: str, parameters: Any
) -> dict[str, list[str]]:
    """The plan for these values, and the generic plan a prepared statement may switch to."""
    await connection.exec_driver_sql(f"PREPARE hot AS {statement}")
    arguments = f"({', '.join(_literal(v) for v in parameters)})" if parameters else ""
    plans = {}
    for mode in ("force_custom_plan", "force_generic_plan"):
        await connection.exec_driver_sql(f"SET plan_cache_mode = {mode}")
        result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE hot{arguments}")
        (document,) = result.scalar_one()  # the driver decodes the JSON
        plans[mode] = list(steps(document["Plan"]))
    await connection.exec_driver_sql("DEALLOCATE hot")
    return plans


def _literal(value: Any) -> str:
    """A parameter as SQL: our hot queries take ids, and lists of ids."""
    if isinstance(value, list | tuple):
        return f"ARRAY[{', '.join(str(int(v)) for v in value)}]"
    return str(int(value))


HOT_QUERIES = {
    "a free courier of a district": lambda uow: uow.couriers.longest_free(7),
    "one passing over couriers": lambda uow: uow.couriers.longest_free(7, excluding=[56, 106]),
    "the oldest order a courier may take": lambda uow: uow.orders.oldest_queued_for(70),
}


@pytest.mark.parametrize("query", HOT_QUERIES.values(), ids=HOT_QUERIES.keys())
async def test_hot_queries_read_an_index(
    filled: AsyncEngine,
    uow_factory: UnitOfWorkFactory,
    query: Callable[[UnitOfWork], Awaitable[Any]],
):
    statement, parameters = await captured(filled, uow_factory, query)
    async with filled.connect() as connection:
        if filled.dialect.name == "sqlite":
            plans = {"plan": await sqlite_plan(connection, statement, parameters)}
        else:
            plans = await postgres_plans(connection, statement, parameters)
    print(f"\n{filled.dialect.name}: {statement}\n{json.dumps(plans, indent=1)}")

    for plan in plans.values():
        on_our_tables = [step for step in plan if OUR_TABLES.search(step)]
        assert on_our_tables, plan
        assert all(SEEK.search(step) for step in on_our_tables), plan
