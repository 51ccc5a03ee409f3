"""The README's dispatch rules: an order taken from a courier never goes straight back to them,
the oldest order a courier may take comes first, and the sweep sees every district."""

from zoneinfo import ZoneInfo

from db.models import CourierStatus, OrderSource
from db.uow import UnitOfWorkFactory
from services import couriers, orders
from services.read_models import OrderStatus
from tests.conftest import FakeClock
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

UTC_ZONE = ZoneInfo("UTC")


async def post(desk: Desk, text: str):
    return await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, text)


async def status(desk: Desk, order_id: int):
    return await desk(orders.order_status, DISPATCHER, order_id)


async def active_order_of(desk: Desk, telegram_id: int) -> int | None:
    card = await desk(couriers.my_card, telegram_id, UTC_ZONE)
    return card.active_order.id if card.active_order else None


async def test_an_order_sent_back_never_returns_to_its_courier_by_itself(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    taken = await post(desk, "North soup")
    await desk(orders.reassign_order, DISPATCHER, taken.id, None)

    assert await desk(orders.sweep_queue) == 0  # the sweep does not give it back
    newer = await post(desk, "North bread")  # a new post goes to the free courier...
    assert newer.courier_telegram_id == 1
    assert (await status(desk, taken.id)).status is OrderStatus.QUEUED  # ...the old one waits
    await desk(orders.complete_order, 1, newer.id)  # freed again: still not given back
    assert await active_order_of(desk, 1) is None
    assert (await status(desk, taken.id)).queue_position == 1

    await desk.add_courier(2, [ids["North"]])  # anyone else takes it
    assert await active_order_of(desk, 2) == taken.id


async def test_a_courier_gets_the_oldest_order_they_may_take(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    first = await post(desk, "North first")
    second = await post(desk, "North second")
    third = await post(desk, "North third")
    await desk(orders.reassign_order, DISPATCHER, first.id, None)

    assert await active_order_of(desk, 1) == second.id  # not #1, taken from them
    await desk(orders.complete_order, 1, second.id)
    assert await active_order_of(desk, 1) == third.id
    await desk(orders.complete_order, 1, third.id)
    assert await active_order_of(desk, 1) is None
    assert (await status(desk, first.id)).status is OrderStatus.QUEUED


async def test_a_dispatcher_can_still_hand_it_back_by_name(desk: Desk):
    ids = await desk.add_districts("North")
    first_courier = await desk.add_courier(1, [ids["North"]])
    order = await post(desk, "North soup")
    await desk(orders.reassign_order, DISPATCHER, order.id, None)

    back = await desk(orders.reassign_order, DISPATCHER, order.id, first_courier)

    assert back.status is OrderStatus.ASSIGNED
    assert back.courier_telegram_id == 1
    kinds = [(chat, kind) for chat, kind, _ in await desk.outbox()]
    assert kinds[-2:] == [(1, "order_assigned"), (DISPATCH_CHAT, "dispatch_assigned")]


async def test_the_sweep_is_not_blinded_by_a_district_nobody_serves(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    ids = await desk.add_districts("Far", "Near")
    uow = uow_factory()
    async with uow.write():
        for n in range(600):  # far more than one batch, all older than the order that matters
            await uow.orders.add(
                ids["Far"],
                f"parcel {n}",
                OrderSource.BOT,
                DISPATCHER,
                DISPATCH_CHAT,
                None,
                fake_clock.now,
            )
        await uow.commit()
    near = await post(desk, "Near soup")
    async with uow.write():  # a courier who slipped in without being served, as after a crash
        courier = await uow.couriers.add(5, "Late", CourierStatus.ACTIVE, None, fake_clock.now)
        await uow.couriers.set_districts(courier.id, [ids["Near"]])
        await uow.commit()

    assert await desk(orders.sweep_queue) == 1
    assert (await status(desk, near.id)).courier_telegram_id == 5
