"""Hundreds of concurrent operations, each in its own session, audited from the database."""

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.models import Courier, Order, OrderEventKind, OrderStatus
from db.repositories.couriers import CourierRepository
from db.repositories.orders import OrderRepository
from db.uow import DispatchRules, UnitOfWork, UnitOfWorkFactory
from tests.api.conftest import client_of
from tests.helpers import Desk
from tests.integration.conftest import POOL
from tests.integration.workload import Audit, Workload, audit, open_race_windows

ONE_IN_PROGRESS_INDEX = "uq_orders_one_in_progress"


async def run_audited(
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    share: float,
    *,
    over_http: bool = False,
    offer_seconds: float = 0,
) -> tuple[Workload, Audit]:
    """Set up couriers, run `share` of the workload with race windows open, audit the history."""
    uow_factory = UnitOfWorkFactory(engine, rules=DispatchRules(offer_seconds))
    desk = Desk(uow_factory)
    async with client_of(uow_factory) as api:
        workload = Workload(api=api if over_http else None, offers=offer_seconds > 0)
        workload = workload.scaled(share)
        names = await workload.prepare(desk)
        open_race_windows(monkeypatch)
        await workload.run(desk, names)
    return workload, await audit(desk.uow_factory)


@pytest.mark.parametrize("over_http", [False, True], ids=["bot", "bot and shops"])
async def test_concurrent_dispatch_keeps_every_guarantee(
    wide_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, over_http: bool
):
    # Over HTTP too: shops' posts and completions on top, so a smaller share of each.
    share = 0.35 if over_http else 0.5
    workload, report = await run_audited(wide_engine, monkeypatch, share, over_http=over_http)

    print(
        f"\n{wide_engine.dialect.name}: {workload.operations} operations, "
        f"{report.assignments} assignments, outcomes {dict(sorted(workload.outcomes.items()))}"
    )
    assert workload.crashes == []
    assert [k for k in workload.outcomes if k.startswith("http") and ": 5" in k] == []
    assert workload.operations >= 280
    assert workload.outcomes["post: ok"] == workload.posts
    assert workload.outcomes["complete: ok"] >= 10
    assert report.assignments > workload.couriers
    assert report.violations == []


async def test_concurrent_offers_keep_every_guarantee(
    wide_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
):
    """Offers that couriers accept, decline or let run out (in 1.5 s), amid everything else."""
    workload, report = await run_audited(wide_engine, monkeypatch, 0.3, offer_seconds=1.5)

    print(
        f"\n{wide_engine.dialect.name}: {workload.operations} operations, "
        f"{report.assignments} assignments, outcomes {dict(sorted(workload.outcomes.items()))}"
    )
    assert workload.crashes == []
    assert workload.outcomes["post: ok"] == workload.posts
    assert workload.outcomes["accept: ok"] >= 1
    assert report.refusals["declined"] + report.refusals["expired"] >= 5
    assert report.violations == []


# What the guarantees above stand on, removed: a read-then-write dispatcher.


async def _naive_claim(self: CourierRepository, courier_id: int) -> Courier | None:
    await self.session.execute(
        update(Courier).where(Courier.id == courier_id).values(free_since=None)
    )
    return await self.get(courier_id)


async def _naive_assign(
    self: OrderRepository, order_id: int, courier_id: int, now: datetime
) -> Order | None:
    await self.session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(status=OrderStatus.ASSIGNED, courier_id=courier_id, assigned_at=now)
    )
    self.add_event(order_id, OrderEventKind.ASSIGNED, courier_id, now)
    return await self.get(order_id)


async def _no_locks(self: UnitOfWork, district_ids: object = (), **couriers: object) -> None:
    return None


@pytest.fixture
async def naive_engine(db_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The driver's default transactions (no BEGIN IMMEDIATE) and no one-order index."""
    # SQLite's own busy wait, short: its default of 5 s only slows the failures down.
    waits = {"connect_args": {"timeout": 0.05}} if db_url.startswith("sqlite") else {}
    naive = create_async_engine(db_url, isolation_level="AUTOCOMMIT", **POOL, **waits)
    async with naive.begin() as connection:
        await connection.execute(text(f"DROP INDEX {ONE_IN_PROGRESS_INDEX}"))
    yield naive
    async with naive.begin() as connection:
        await connection.execute(text("DELETE FROM outbox"))
        await connection.execute(text("DELETE FROM order_events"))
        await connection.execute(text("DELETE FROM orders"))
        await connection.execute(
            text(
                f"CREATE UNIQUE INDEX {ONE_IN_PROGRESS_INDEX} ON orders (courier_id)"
                " WHERE status IN ('offered', 'assigned')"
            )
        )
    await naive.dispose()


async def test_the_audit_catches_a_naive_read_then_write_dispatcher(
    naive_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(CourierRepository, "claim", _naive_claim)
    monkeypatch.setattr(OrderRepository, "assign", _naive_assign)
    monkeypatch.setattr(UnitOfWork, "lock_districts", _no_locks)
    workload, report = await run_audited(naive_engine, monkeypatch, 0.2)  # it fails at once

    print(
        f"\nnaive on {naive_engine.dialect.name}: {len(report.violations)} violations,"
        f" {len(workload.crashes)} crashed operations, e.g. {report.violations[:3]}"
    )
    assert any("while holding" in v for v in report.violations)
