"""Shops' webhooks at their edges: batches cut short to fit their lease with two senders at
once, a receiver that never ends its answer, an endpoint deleted mid-batch, and a stop
mid-batch. On SQLite and PostgreSQL, through real HTTP on loopback."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.shops.webhooks import WebhookSender, WebhookSettings
from db.models import WebhookDelivery, WebhookEndpoint
from db.uow import UnitOfWorkFactory
from services import couriers, districts, orders, shops, webhooks
from services.access import Shop
from services.read_models import WebhookView
from tests.bot.test_shop_webhooks import FAST
from tests.e2e.conftest import free_port


class Slow:
    """An endpoint that answers each call after `pause` seconds, counting what is in flight."""

    def __init__(
        self, pause: float, answer: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> None:
        self.pause = pause
        self.answer = answer
        self.port = free_port()
        self.arrived: list[str] = []  # webhook-ids, in the order they came
        self.in_flight = self.most_in_flight = 0
        self.came = asyncio.Condition()

    async def hook(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.pause)
            async with self.came:
                self.arrived.append(request.headers["webhook-id"])
                self.came.notify_all()
            return await self.answer(request)
        finally:
            self.in_flight -= 1

    async def until(self, count: int) -> None:
        async with self.came:
            await asyncio.wait_for(self.came.wait_for(lambda: len(self.arrived) >= count), 20)


async def no_content(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


@asynccontextmanager
async def serving(endpoint: Slow) -> AsyncIterator[None]:
    app = web.Application()
    app.router.add_post("/hook", endpoint.hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", endpoint.port).start()
    try:
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def senders(
    uow_factory: UnitOfWorkFactory, settings: WebhookSettings, count: int = 1
) -> AsyncIterator[list[WebhookSender]]:
    running = [WebhookSender(uow_factory, settings) for _ in range(count)]
    tasks = [asyncio.create_task(sender.run()) for sender in running]
    try:
        yield running
    finally:
        for sender in running:
            await sender.stop(2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def shop(uow_factory: UnitOfWorkFactory) -> Shop:
    shop = await shops.unnamed(uow_factory())
    await districts.add_district(uow_factory(), shop, "North")
    for n in range(12):
        await couriers.create_courier(uow_factory(), shop, f"C{n}", ["North"])
    return shop


async def events(
    uow_factory: UnitOfWorkFactory, shop: Shop, endpoint: Slow, count: int
) -> WebhookView:
    """An endpoint of the shop, and `count` orders assigned: an event each, in order."""
    hook = await webhooks.register(
        uow_factory(), shop, f"http://127.0.0.1:{endpoint.port}/hook", None, allow_private=True
    )
    for n in range(count):
        await orders.post_order_for_shop(uow_factory(), shop, "North", f"parcel {n}", queue=False)
    return hook


async def logged(uow_factory: UnitOfWorkFactory, hook: WebhookView) -> dict[str, str]:
    """Each delivery's state, by webhook-id, in the order of the events (deleted or not)."""
    uow = uow_factory()
    async with uow.read():
        rows = await uow.session.execute(
            select(WebhookDelivery.message_id, WebhookDelivery.state)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookEndpoint.sid == hook.sid)
            .order_by(WebhookDelivery.id)
        )
        return {message_id: str(state) for message_id, state in rows}


async def until_logged(
    uow_factory: UnitOfWorkFactory, hook: WebhookView, done: Callable[[set[str]], bool]
) -> None:
    for _ in range(400):
        if done(set((await logged(uow_factory, hook)).values())):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(await logged(uow_factory, hook))


async def test_two_senders_with_short_leases_send_one_at_a_time_in_order(
    uow_factory: UnitOfWorkFactory, shop: Shop
):
    """A batch that would outlast its lease is cut short and recorded in time: the other
    sender never takes its rows while they are being sent."""
    endpoint = Slow(0.15, no_content)
    short = replace(FAST, lease=timedelta(seconds=1), request_seconds=0.3, record_seconds=0.2)
    async with serving(endpoint):
        hook = await events(uow_factory, shop, endpoint, 12)
        async with senders(uow_factory, short, count=2):
            await endpoint.until(12)
            await until_logged(uow_factory, hook, lambda states: states == {"sent"})

    assert endpoint.most_in_flight == 1
    assert endpoint.arrived == list(await logged(uow_factory, hook))


async def test_an_answer_that_never_ends_is_not_waited_for(
    uow_factory: UnitOfWorkFactory, shop: Shop
):
    async def endless(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(status=200)
        await answer.prepare(request)
        while True:  # until the sender hangs up
            await answer.write(b"x" * 65536)
            await asyncio.sleep(0.01)

    endpoint = Slow(0, endless)
    async with serving(endpoint):
        hook = await events(uow_factory, shop, endpoint, 1)
        async with senders(uow_factory, replace(FAST, request_seconds=0.5)):
            await endpoint.until(1)
            await until_logged(uow_factory, hook, lambda states: states != {"pending"})

    assert list((await logged(uow_factory, hook)).values()) == ["sent"]


async def test_a_deleted_endpoint_gets_nothing_more(uow_factory: UnitOfWorkFactory, shop: Shop):
    endpoint = Slow(0.1, no_content)
    async with serving(endpoint):
        hook = await events(uow_factory, shop, endpoint, 10)
        async with senders(uow_factory, FAST):
            await endpoint.until(2)
            await webhooks.delete(uow_factory(), shop, hook.sid)
            deleted_after = len(endpoint.arrived)
            await asyncio.sleep(0.5)

    states = await logged(uow_factory, hook)
    assert len(endpoint.arrived) <= deleted_after + 1  # the one in flight, at most
    assert {states[i] for i in endpoint.arrived} == {"sent"}
    assert set(states.values()) == {"sent", "failed"}


async def test_a_stop_mid_batch_records_what_arrived(uow_factory: UnitOfWorkFactory, shop: Shop):
    """Nothing that arrived goes again after a restart; the rest does, in order."""
    endpoint = Slow(0.1, no_content)
    async with serving(endpoint):
        hook = await events(uow_factory, shop, endpoint, 10)
        async with senders(uow_factory, FAST) as (first,):
            await endpoint.until(3)
            await first.stop(2)
            before = list(endpoint.arrived)
            states = await logged(uow_factory, hook)
        async with senders(uow_factory, FAST):
            await endpoint.until(10)

    assert {states[i] for i in before} == {"sent"}
    assert len(endpoint.arrived) == len(set(endpoint.arrived)) == 10
    assert endpoint.arrived == list(await logged(uow_factory, hook))
