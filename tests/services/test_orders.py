"""Posting, assignment, the queue, completion, cancelling and reassigning."""

from zoneinfo import ZoneInfo

import pytest

from services import couriers, orders
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.read_models import CourierStatus, OrderStatus
from tests.conftest import FakeClock
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, STRANGER, Desk

UTC_ZONE = ZoneInfo("UTC")


async def post(desk: Desk, text: str, actor: int = DISPATCHER):
    return await desk(orders.post_order_text, actor, DISPATCH_CHAT, text)


async def test_order_goes_to_the_courier_free_the_longest(desk: Desk, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    first = await desk.add_courier(1, [ids["North"]])
    fake_clock.advance(minutes=1)
    await desk.add_courier(2, [ids["North"]])

    order = await post(desk, "North two pizzas")

    assert order.status is OrderStatus.ASSIGNED
    assert order.courier_id == first
    assert order.description == "two pizzas"
    assert order.assigned_at == fake_clock.now


async def test_courier_of_another_district_is_not_chosen(desk: Desk):
    ids = await desk.add_districts("North", "South")
    await desk.add_courier(1, [ids["South"]])

    order = await post(desk, "North soup")

    assert order.status is OrderStatus.QUEUED
    assert order.queue_position == 1
    assert (await post(desk, "North bread")).queue_position == 2


async def test_offline_pending_and_busy_couriers_are_skipped(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    await desk(couriers.set_online, 1, False, UTC_ZONE)
    await desk(couriers.register_courier, 2, "Pending", [ids["North"]], approval_required=True)
    await desk.add_courier(3, [ids["North"]])
    busy = await post(desk, "North first")

    second = await post(desk, "North second")

    assert busy.courier_telegram_id == 3
    assert second.status is OrderStatus.QUEUED


async def test_longest_district_name_that_prefixes_the_text_wins(desk: Desk):
    ids = await desk.add_districts("Old", "Old Town")
    await desk.add_courier(1, [ids["Old Town"]])

    order = await post(desk, "old town  flowers")

    assert order.district == "Old Town"
    assert order.description == "flowers"


async def test_district_must_end_at_a_word_boundary(desk: Desk):
    await desk.add_districts("Old")

    with pytest.raises(NotFound) as error:
        await post(desk, "Oldtown flowers")
    assert error.value.code == "district_unknown"


@pytest.mark.parametrize("text", ["North", "North  ", "North " + "x" * 1001])
async def test_bad_description_is_refused_and_nothing_is_written(desk: Desk, text: str):
    await desk.add_districts("North")

    with pytest.raises(InvalidInput) as error:
        await post(desk, text)

    assert error.value.code == "description_length"
    assert error.value.params == {"min": 1, "max": 1000}
    page = await desk(orders.active_orders, DISPATCHER, 0, 10)
    assert page.total == 0


async def test_description_of_exactly_1000_characters_is_accepted(desk: Desk):
    await desk.add_districts("North")
    order = await post(desk, "North " + "x" * 1000)
    assert len(order.description) == 1000


async def test_only_dispatchers_and_admins_post(desk: Desk):
    await desk.add_districts("North")
    assert (await post(desk, "North tea", actor=ADMIN)).id == 1
    with pytest.raises(Forbidden):
        await post(desk, "North tea", actor=STRANGER)


async def test_completion_frees_the_courier_and_hands_over_the_oldest_queued(
    desk: Desk, fake_clock: FakeClock
):
    ids = await desk.add_districts("North", "South")
    await desk.add_courier(1, [ids["North"], ids["South"]])
    first = await post(desk, "North one")
    older = await post(desk, "South two")
    await post(desk, "North three")
    fake_clock.advance(minutes=25)

    result = await desk(orders.complete_order, 1, first.id)

    assert result.order.status is OrderStatus.COMPLETED
    assert result.order.delivery_time.total_seconds() == 25 * 60
    assert not result.already_completed
    card = await desk(couriers.my_card, 1, UTC_ZONE)
    assert card.active_order is not None
    assert card.active_order.id == older.id


async def test_completing_twice_is_a_harmless_no_op(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    order = await post(desk, "North one")
    await desk(orders.complete_order, 1, order.id)
    outbox_before = await desk.outbox()

    again = await desk(orders.complete_order, 1, order.id)

    assert again.already_completed
    assert await desk.outbox() == outbox_before


async def test_only_the_assigned_courier_completes(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    await desk.add_courier(2, [ids["North"]])
    order = await post(desk, "North one")

    with pytest.raises(Forbidden) as error:
        await desk(orders.complete_order, 2, order.id)
    assert error.value.code == "not_your_order"
    with pytest.raises(Forbidden):
        await desk(orders.complete_order, STRANGER, order.id)
    assert (await desk(orders.order_status, DISPATCHER, order.id)).status is OrderStatus.ASSIGNED


async def test_completing_a_missing_or_cancelled_order_is_an_error(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    order = await post(desk, "North one")
    await desk(orders.cancel_order, DISPATCHER, order.id)

    with pytest.raises(Conflict) as error:
        await desk(orders.complete_order, 1, order.id)
    assert error.value.code == "order_cancelled"
    with pytest.raises(NotFound):
        await desk(orders.complete_order, 1, 4242)


async def test_cancelling_an_assigned_order_frees_and_serves_the_courier(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    taken = await post(desk, "North one")
    waiting = await post(desk, "North two")

    cancelled = await desk(orders.cancel_order, DISPATCHER, taken.id)

    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    now_served = await desk(orders.order_status, DISPATCHER, waiting.id)
    assert now_served.courier_telegram_id == 1
    kinds = [(chat, kind) for chat, kind, _ in await desk.outbox()]
    assert kinds[-3:] == [
        (1, "order_withdrawn"),
        (1, "order_assigned"),
        (DISPATCH_CHAT, "dispatch_assigned"),
    ]


async def test_cancelling_a_queued_order_and_cancelling_twice(desk: Desk):
    await desk.add_districts("North")
    order = await post(desk, "North one")

    assert (await desk(orders.cancel_order, DISPATCHER, order.id)).status is OrderStatus.CANCELLED
    with pytest.raises(Conflict) as error:
        await desk(orders.cancel_order, DISPATCHER, order.id)
    assert error.value.code == "order_cancelled"
    with pytest.raises(Forbidden):
        await desk(orders.cancel_order, 1, order.id)


async def test_reassign_to_a_named_free_courier(desk: Desk):
    ids = await desk.add_districts("North", "South")
    first = await desk.add_courier(1, [ids["North"]])
    second = await desk.add_courier(2, [ids["South"]])
    order = await post(desk, "North one")

    moved = await desk(orders.reassign_order, DISPATCHER, order.id, second)

    assert moved.courier_id == second
    card = await desk(couriers.courier_card, DISPATCHER, first, UTC_ZONE)
    assert card.active_order is None
    assert not card.courier.busy
    chats = [(chat, kind) for chat, kind, _ in await desk.outbox()]
    assert (1, "order_withdrawn") in chats
    assert chats[-2:] == [(2, "order_assigned"), (DISPATCH_CHAT, "dispatch_assigned")]


async def test_reassign_to_a_busy_courier_changes_nothing(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    second = await desk.add_courier(2, [ids["North"]])
    order = await post(desk, "North one")
    await post(desk, "North two")
    outbox_before = await desk.outbox()

    with pytest.raises(Conflict) as error:
        await desk(orders.reassign_order, DISPATCHER, order.id, second)

    assert error.value.code == "courier_unavailable"
    assert (await desk(orders.order_status, DISPATCHER, order.id)).courier_telegram_id == 1
    assert await desk.outbox() == outbox_before


async def test_reassign_back_to_the_queue_goes_to_another_free_courier(
    desk: Desk, fake_clock: FakeClock
):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    fake_clock.advance(seconds=1)
    order = await post(desk, "North one")
    await desk.add_courier(2, [ids["North"]])

    moved = await desk(orders.reassign_order, DISPATCHER, order.id, None)

    assert moved.courier_telegram_id == 2


async def test_reassign_back_to_the_queue_with_nobody_free_keeps_it_waiting(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    order = await post(desk, "North one")

    moved = await desk(orders.reassign_order, DISPATCHER, order.id, None)

    assert moved.status is OrderStatus.QUEUED
    assert moved.queue_position == 1
    card = await desk(couriers.my_card, 1, UTC_ZONE)
    assert card.active_order is None
    assert (DISPATCH_CHAT, "dispatch_requeued") in [(c, k) for c, k, _ in await desk.outbox()]


async def test_reassign_needs_an_order_in_progress(desk: Desk):
    await desk.add_districts("North")
    order = await post(desk, "North one")
    with pytest.raises(Conflict) as error:
        await desk(orders.reassign_order, DISPATCHER, order.id, None)
    assert error.value.code == "order_not_in_progress"
    with pytest.raises(NotFound):
        await desk(orders.reassign_order, DISPATCHER, 777, None)


async def test_order_status_is_for_dispatchers_and_the_orders_courier(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    await desk.add_courier(2, [ids["North"]])
    order = await post(desk, "North one")

    assert (await desk(orders.order_status, 1, order.id)).id == order.id
    with pytest.raises(Forbidden):
        await desk(orders.order_status, 2, order.id)
    with pytest.raises(NotFound):
        await desk(orders.order_status, DISPATCHER, 999)


async def test_active_orders_page_lists_in_progress_then_queue(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    posted = [await post(desk, f"North order {n}") for n in range(5)]
    await desk(orders.complete_order, 1, posted[0].id)

    first = await desk(orders.active_orders, DISPATCHER, 0, 2)
    second = await desk(orders.active_orders, DISPATCHER, 2, 2)

    assert first.total == 4
    assert [o.id for o in first.items + second.items] == [p.id for p in posted[1:]]
    assert first.items[0].status is OrderStatus.ASSIGNED


async def test_sweep_assigns_what_it_can(desk: Desk, uow_factory, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    queued = await post(desk, "North one")
    # A courier who slipped in without being served, as after a crash mid-way.
    uow = uow_factory()
    async with uow.write():
        courier = await uow.couriers.add(5, "Late", CourierStatus.ACTIVE, None, fake_clock.now)
        await uow.couriers.set_districts(courier.id, [ids["North"]])
        await uow.commit()

    assert await desk(orders.sweep_queue) == 1
    assert (await desk(orders.order_status, DISPATCHER, queued.id)).courier_telegram_id == 5
    assert await desk(orders.sweep_queue) == 0


async def test_a_cancel_based_on_a_stale_read_does_not_touch_the_new_courier(
    desk: Desk, uow_factory, fake_clock: FakeClock
):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    second = await desk.add_courier(2, [ids["North"]])
    order = await post(desk, "North one")
    stale = uow_factory()
    async with stale.read():
        read_before = await stale.orders.get(order.id)
        assert read_before is not None
        stale.session.expunge(read_before)
    await desk(orders.reassign_order, DISPATCHER, order.id, second)
    async with stale.write():
        assert not await stale.orders.cancel(read_before, fake_clock.now)

    assert (await desk(orders.order_status, DISPATCHER, order.id)).courier_id == second
