"""The hot paths' statement budgets: nothing read twice, nothing read back that was just written.

Each statement costs far more in the ORM than in the database, so a new one on these paths
should be a decision: raise the budget here, and say why.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders
from tests.helpers import DISPATCHER, Desk


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements run meanwhile, but BEGIN and PostgreSQL's advisory locks."""
    seen: list[str] = []

    def record(_c: object, _cur: object, sql: str, *_: object) -> None:
        if not sql.startswith(("BEGIN", "SELECT pg_advisory_xact_lock")):
            seen.append(" ".join(sql.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_posting_and_completing_stay_within_their_budgets(engine: AsyncEngine, desk: Desk):
    north = (await desk.add_districts("North"))["North"]
    courier = await desk.add_courier(7, [north])

    with statements(engine) as posting:
        order = await desk(orders.post_order_text, DISPATCHER, DISPATCHER, "North soup")
    with statements(engine) as completing:
        await desk(orders.complete_order, 7, order.id)

    assert order.courier_id == courier
    # The dispatcher, the district, the order, the free courier, the courier claimed (and
    # returned), their district rows, the order assigned (and returned), its history, the offer.
    assert len(posting) <= 9, "\n".join(posting)
    # The order, the courier, the order completed (and returned), the courier freed, their
    # district rows, the next queued order, the district for the view, the history, the notice;
    # and on PostgreSQL the courier's districts, to lock them.
    on_postgres = engine.dialect.name == "postgresql"
    assert len(completing) <= 9 + on_postgres, "\n".join(completing)
    assert not any(s.startswith("SELECT couriers") for s in posting), "courier read back"
    assert sum(s.startswith("SELECT orders") for s in completing) == 1, "order read back"
