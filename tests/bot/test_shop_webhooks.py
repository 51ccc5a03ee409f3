"""Shops' webhooks through a real HTTP receiver on loopback that fails 30% of the calls and
goes down for a while: every event arrives, in order per order, each webhook-id accepted
once, each signature checked by the `standardwebhooks` library. Two senders (two
instances) share the work. Both databases.

Time is scaled down: pauses between tries of 5 to 100 ms instead of 5 s to an hour, and the
receiver down for 1.5 s instead of a minute; what is tested is the same.
"""

import asyncio
import json
import random
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from bot.metrics import Metrics
from bot.shops.webhooks import PublicResolver, WebhookSender, WebhookSettings
from db.models import Order, OrderEvent, OrderEventKind, WebhookDelivery, WebhookState
from db.uow import UnitOfWorkFactory
from services import couriers, districts, orders, shops, webhooks
from services.access import Shop
from services.orders import OrderFilter
from services.read_models import OrderStatus
from services.webhooks import RetryPolicy
from tests.e2e.conftest import free_port
from tests.helpers import DISPATCHER, Desk

ORDERS = 200
FAST = WebhookSettings(
    allow_private=True,
    policy=RetryPolicy(
        first_pause=timedelta(milliseconds=5), longest_pause=timedelta(milliseconds=100)
    ),
    request_seconds=2,
    idle_seconds=0.05,
)


class Receiver:
    """A shop's endpoint: refuses 30% of the calls at random, checks each signature, and
    keeps the first accepted copy of each message."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.secrets: dict[str, str] = {}  # path: secret
        self.accepted: dict[str, Counter[str]] = defaultdict(Counter)
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.random = random.Random(20)
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path}", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        if self.random.random() < 0.3:
            return web.Response(status=503)
        Webhook(self.secrets[path]).verify(body, dict(request.headers))  # raises: a 500
        message_id = request.headers["webhook-id"]
        self.accepted[path][message_id] += 1
        if self.accepted[path][message_id] == 1:
            self.events[path].append(json.loads(body))
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port())
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def desk(uow_factory: UnitOfWorkFactory) -> Desk:
    return Desk(uow_factory)


async def drive(desk: Desk, shop: Shop, halfway: asyncio.Event) -> None:
    """Every order of the shop through its life: most completed, some cancelled (waiting or
    in progress), some taken back to the queue by a dispatcher first."""
    taken_back: set[int] = set()
    for n in range(ORDERS):
        order = await desk(orders.post_order_for_shop, shop, "North", f"parcel {n}", queue=True)
        if n % 25 == 0 and order.status is OrderStatus.QUEUED:
            await desk(orders.cancel_order, shop, order.sid)
        if n == ORDERS // 2:
            halfway.set()
        busy = await desk(orders.shop_orders, shop, OrderFilter(OrderStatus.ASSIGNED), 0, 50)
        for view in busy.items:
            if view.id % 7 == 2 and view.id not in taken_back:
                taken_back.add(view.id)
                await desk(orders.reassign_order, DISPATCHER, view.id, None)
            elif view.id % 10 == 3:
                await desk(orders.cancel_order, shop, view.sid)
            else:
                await desk(orders.complete_order, shop, view.sid)
    for status in (OrderStatus.ASSIGNED, OrderStatus.QUEUED):
        left = await desk(orders.shop_orders, shop, OrderFilter(status), 0, ORDERS)
        for view in left.items:
            await desk(orders.cancel_order, shop, view.sid)


@asynccontextmanager
async def within(seconds: float) -> AsyncIterator[None]:
    """A time limit that, when it runs out, says where every task was waiting."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        for task in asyncio.all_tasks():
            print(f"task {task.get_name()}:", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        raise


async def history(uow_factory: UnitOfWorkFactory) -> dict[str, list[str]]:
    """Each order's changes as the database recorded them, in order: what must arrive."""
    uow = uow_factory()
    async with uow.read():
        rows = await uow.session.execute(
            select(Order.sid, OrderEvent.kind)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(OrderEvent.kind != OrderEventKind.CREATED)
            .order_by(OrderEvent.id)
        )
        changes: dict[str, list[str]] = defaultdict(list)
        for sid, kind in rows:
            changes[str(sid)].append(f"order.{kind}")
        return changes


async def all_sent(uow_factory: UnitOfWorkFactory) -> None:
    while True:
        uow = uow_factory()
        async with uow.read():
            states = set(await uow.session.scalars(select(WebhookDelivery.state)))
        if states == {WebhookState.SENT}:
            return
        await asyncio.sleep(0.05)


async def test_every_event_arrives_once_in_order_through_failures_and_an_outage(
    uow_factory: UnitOfWorkFactory, desk: Desk, receiver: Receiver
):
    await desk.staff_up()
    shop = await shops.by_token(uow_factory(), (await shops.add_token(uow_factory(), "A"))[1])
    assert shop is not None
    await desk(districts.add_district, shop, "North")
    for name in ("Ann", "Bob", "Cat", "Dan"):
        await desk(couriers.create_courier, shop, name, ["North"])
    every = await desk(webhooks.register, shop, receiver.url("all"), None, allow_private=True)
    done = await desk(
        webhooks.register, shop, receiver.url("done"), ["order.completed"], allow_private=True
    )
    receiver.secrets = {"all": every.secret or "", "done": done.secret or ""}
    metrics = Metrics()
    senders = [WebhookSender(uow_factory, FAST, metrics) for _ in range(2)]
    running = [asyncio.create_task(sender.run()) for sender in senders]
    halfway = asyncio.Event()

    async def outage() -> None:
        await halfway.wait()
        await receiver.stop()
        await asyncio.sleep(1.5)
        await receiver.start()

    try:
        async with within(120):
            await asyncio.gather(drive(desk, shop, halfway), outage())
            await all_sent(uow_factory)
    finally:
        for sender in senders:
            await sender.stop(1)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    expected = await history(uow_factory)
    arrived: dict[str, list[str]] = defaultdict(list)
    for event in receiver.events["all"]:
        arrived[event["data"]["sid"]].append(event["type"])
    assert len(expected) == ORDERS
    assert sum(map(len, expected.values())) > 2 * ORDERS
    assert arrived == expected
    assert set(receiver.accepted["all"].values()) == {1}
    delivered = sum(len(e) for e in receiver.events.values())
    assert calls(metrics, "delivered") == delivered
    assert calls(metrics, "failed") > 0
    completed = [e["data"]["sid"] for e in receiver.events["done"]]
    assert sorted(completed) == sorted(
        s for s, kinds in expected.items() if kinds[-1] == "order.completed"
    )
    last = {e["data"]["sid"]: e for e in receiver.events["all"]}
    for event in last.values():
        assert event["data"]["state"] == event["type"].removeprefix("order.").replace(
            "assigned", "in_progress"
        )


def calls(metrics: Metrics, outcome: str) -> float | None:
    return metrics.registry.get_sample_value("dispatch_webhook_calls_total", {"outcome": outcome})


async def test_a_name_that_resolves_inside_is_refused_as_the_call_is_made():
    resolver = PublicResolver()
    try:
        with pytest.raises(OSError, match="private address"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


async def test_a_redirect_is_a_failure_not_followed(uow_factory: UnitOfWorkFactory, desk: Desk):
    followed: list[str] = []
    tried = asyncio.Semaphore(0)

    async def moved(_request: web.Request) -> web.Response:
        tried.release()
        raise web.HTTPFound("/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", moved)
    app.router.add_post("/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    shop = await shops.unnamed(uow_factory())
    await desk(districts.add_district, shop, "North")
    await desk(couriers.create_courier, shop, "Ann", ["North"])
    hook = await desk(
        webhooks.register, shop, f"http://127.0.0.1:{port}/hook", None, allow_private=True
    )
    await desk(orders.post_order_for_shop, shop, "North", "soup", queue=False)
    sender = WebhookSender(uow_factory, FAST)
    running = asyncio.create_task(sender.run())
    try:
        for _ in range(2):  # the second try comes after the first was recorded
            await asyncio.wait_for(tried.acquire(), 10)
        calls = await desk(webhooks.calls, shop, hook.sid)
    finally:
        await sender.stop(1)
        running.cancel()
        await runner.cleanup()

    assert calls[0].last_status == 302
    assert calls[0].state == "pending"
    assert calls[0].attempts >= 1
    assert followed == []
