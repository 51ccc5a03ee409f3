"""Dispatchers and their couriers: requests nobody got, every copy closed, shifts and blocks."""

from zoneinfo import ZoneInfo

import pytest

from db.uow import UnitOfWorkFactory
from services import couriers, orders, staff
from services.errors import Conflict, Forbidden
from services.read_models import CourierStatus, OrderStatus
from tests.conftest import FakeClock
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, STRANGER, Desk

UTC_ZONE = ZoneInfo("UTC")
NEW_ADMIN = 2000


async def notices(desk: Desk, kind: str) -> list[tuple[int, dict]]:
    return [(chat, payload) for chat, k, payload in await desk.outbox() if k == kind]


async def test_a_request_that_reached_nobody_can_still_be_decided(
    uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    desk = Desk(uow_factory)  # no staff yet: step 2 of the README's own setup
    uow = uow_factory()
    async with uow.write():
        north = await uow.districts.add("North", "north", fake_clock.now)
        await uow.commit()
    assert north is not None
    courier = await desk(couriers.register_courier, 7, "Ann", [north.id], approval_required=True)
    assert await notices(desk, "registration_request") == []

    await desk(staff.sync_admins, [NEW_ADMIN])
    sent = await desk(couriers.send_pending_requests, NEW_ADMIN, NEW_ADMIN, "ru")

    assert (sent.sent, sent.more) == (1, False)
    assert await notices(desk, "registration_request") == [
        (NEW_ADMIN, {"courier_id": courier.id, "name": "Ann", "districts": ["North"]})
    ]
    approved = await desk(couriers.decide_registration, NEW_ADMIN, courier.id, approve=True)
    assert approved.status is CourierStatus.ACTIVE


async def test_pending_sends_a_batch_and_says_more_wait(desk: Desk):
    ids = await desk.add_districts("North")
    for telegram_id in range(100, 100 + couriers.PENDING_BATCH + 1):
        await desk(
            couriers.register_courier, telegram_id, "C", [ids["North"]], approval_required=True
        )
    before = len(await notices(desk, "registration_request"))

    sent = await desk(couriers.send_pending_requests, DISPATCHER, DISPATCH_CHAT, None)

    assert (sent.sent, sent.more) == (couriers.PENDING_BATCH, True)
    assert len(await notices(desk, "registration_request")) == before + couriers.PENDING_BATCH
    with pytest.raises(Forbidden):
        await desk(couriers.send_pending_requests, STRANGER, STRANGER, None)


async def test_a_decision_closes_every_copy_in_every_chat(desk: Desk):
    ids = await desk.add_districts("North")
    courier = await desk(
        couriers.register_courier, 7, "Ann", [ids["North"]], approval_required=True
    )
    await desk(couriers.send_pending_requests, DISPATCHER, DISPATCH_CHAT, None)
    await desk(couriers.record_request_copy, courier.id, 555, 42, None)  # a card, sent directly

    await desk(couriers.decide_registration, ADMIN, courier.id, approve=False)

    closed = await notices(desk, "registration_closed")
    assert sorted(chat for chat, _ in closed) == sorted([ADMIN, DISPATCHER, DISPATCH_CHAT, 555])
    assert all(p == {"courier_id": courier.id, "name": "Ann", "approved": False} for _, p in closed)


async def test_a_copy_shown_after_the_decision_is_closed_at_once(desk: Desk):
    ids = await desk.add_districts("North")
    courier = await desk(
        couriers.register_courier, 7, "Ann", [ids["North"]], approval_required=True
    )
    await desk(couriers.decide_registration, ADMIN, courier.id, approve=True)
    before = await notices(desk, "registration_closed")

    await desk(couriers.record_request_copy, courier.id, 555, 42, None)

    after = await notices(desk, "registration_closed")
    assert after[len(before) :] == [
        (555, {"courier_id": courier.id, "name": "Ann", "approved": True})
    ]


async def test_ending_a_shift_returns_the_order_to_the_next_courier(desk: Desk):
    ids = await desk.add_districts("North")
    gone = await desk.add_courier(1, [ids["North"]])
    order = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")
    await desk.add_courier(2, [ids["North"]])

    change = await desk(couriers.end_shift, DISPATCHER, gone)

    assert not change.courier.online
    assert not change.courier.busy
    assert change.returned_order_id == order.id
    assert (await desk(orders.order_status, DISPATCHER, order.id)).courier_telegram_id == 2
    told = [(chat, kind) for chat, kind, _ in await desk.outbox()]
    assert (1, "shift_ended") in told
    assert (1, "order_withdrawn") in told
    assert told[-2:] == [(2, "order_assigned"), (DISPATCH_CHAT, "dispatch_assigned")]
    card = await desk(couriers.my_card, 1, UTC_ZONE)
    assert card.active_order is None


async def test_with_nobody_else_the_order_waits_and_the_chat_hears_its_place(desk: Desk):
    ids = await desk.add_districts("North")
    gone = await desk.add_courier(1, [ids["North"]])
    order = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")

    await desk(couriers.end_shift, ADMIN, gone)

    assert (await desk(orders.order_status, DISPATCHER, order.id)).status is OrderStatus.QUEUED
    assert (DISPATCH_CHAT, {"order_id": order.id, "position": 1}) in await notices(
        desk, "dispatch_requeued"
    )
    await desk(couriers.set_online, 1, True, UTC_ZONE)  # back on shift: not this order
    assert (await desk(couriers.my_card, 1, UTC_ZONE)).active_order is None


async def test_block_and_unblock(desk: Desk):
    ids = await desk.add_districts("North")
    courier = await desk.add_courier(1, [ids["North"]])
    order = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")

    blocked = (await desk(couriers.block_courier, DISPATCHER, courier)).courier

    assert blocked.status is CourierStatus.BLOCKED
    assert (await desk(orders.order_status, DISPATCHER, order.id)).status is OrderStatus.QUEUED
    with pytest.raises(Conflict) as error:
        await desk(couriers.set_online, 1, True, UTC_ZONE)
    assert error.value.code == "courier_blocked"
    with pytest.raises(Conflict) as error:
        await desk(couriers.block_courier, DISPATCHER, courier)
    assert error.value.code == "already_blocked"

    unblocked = (await desk(couriers.unblock_courier, DISPATCHER, courier)).courier

    assert unblocked.status is CourierStatus.ACTIVE
    assert not unblocked.online  # they start a shift themselves
    assert (await desk(orders.order_status, DISPATCHER, order.id)).status is OrderStatus.QUEUED
    await desk(couriers.set_online, 1, True, UTC_ZONE)  # not the order taken from them...
    assert (await desk(orders.order_status, DISPATCHER, order.id)).status is OrderStatus.QUEUED
    fresh = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North tea")
    assert fresh.courier_telegram_id == 1  # ...but anything new
    with pytest.raises(Conflict) as error:
        await desk(couriers.unblock_courier, DISPATCHER, courier)
    assert error.value.code == "courier_not_blocked"
    told = [(chat, kind) for chat, kind, _ in await desk.outbox()]
    assert (1, "courier_blocked") in told
    assert (1, "courier_unblocked") in told


async def test_blocking_a_waiting_courier_closes_their_request(desk: Desk):
    ids = await desk.add_districts("North")
    courier = await desk(
        couriers.register_courier, 7, "Ann", [ids["North"]], approval_required=True
    )

    await desk(couriers.block_courier, ADMIN, courier.id)

    closed = await notices(desk, "registration_closed")
    assert sorted(chat for chat, _ in closed) == [ADMIN, DISPATCHER]


@pytest.mark.parametrize(
    "use_case", [couriers.end_shift, couriers.block_courier, couriers.unblock_courier]
)
async def test_only_staff_manage_couriers(desk: Desk, use_case):
    ids = await desk.add_districts("North")
    courier = await desk.add_courier(1, [ids["North"]])
    with pytest.raises(Forbidden):
        await desk(use_case, 1, courier)
    with pytest.raises(Forbidden):
        await desk(use_case, STRANGER, courier)
