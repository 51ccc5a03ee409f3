"""Registration, approval, invites, shifts, districts and the courier card."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from services import couriers, invites, orders
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.read_models import CourierStatus, OrderStatus
from tests.conftest import FakeClock
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, STRANGER, Desk

UTC_ZONE = ZoneInfo("UTC")


async def register(desk: Desk, telegram_id: int, district_ids, **kwargs):
    kwargs.setdefault("approval_required", True)
    return await desk(couriers.register_courier, telegram_id, "Ann", district_ids, **kwargs)


async def test_with_approval_a_new_courier_waits_and_staff_hear(desk: Desk):
    ids = await desk.add_districts("North")

    courier = await register(desk, 7, [ids["North"]], locale="ru")

    assert courier.status is CourierStatus.PENDING
    assert courier.online
    assert courier.districts == ("North",)
    requests = [
        (chat, p) for chat, kind, p in await desk.outbox() if kind == "registration_request"
    ]
    assert sorted(chat for chat, _ in requests) == [ADMIN, DISPATCHER]
    assert requests[0][1] == {"courier_id": courier.id, "name": "Ann", "districts": ["North"]}


async def test_without_approval_the_courier_starts_and_takes_waiting_work(desk: Desk):
    ids = await desk.add_districts("North")
    waiting = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North tea")

    courier = await register(desk, 7, [ids["North"]], approval_required=False)

    assert courier.status is CourierStatus.ACTIVE
    assert courier.busy
    assert (await desk(orders.order_status, DISPATCHER, waiting.id)).courier_id == courier.id


async def test_approval_activates_and_serves_rejection_blocks(desk: Desk):
    ids = await desk.add_districts("North")
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North tea")
    ann = await register(desk, 7, [ids["North"]])
    bob = await register(desk, 8, [ids["North"]])

    approved = await desk(couriers.decide_registration, DISPATCHER, ann.id, approve=True)
    rejected = await desk(couriers.decide_registration, ADMIN, bob.id, approve=False)

    assert approved.status is CourierStatus.ACTIVE
    assert approved.busy
    assert rejected.status is CourierStatus.BLOCKED
    told = [(chat, kind) for chat, kind, _ in await desk.outbox()]
    assert (7, "registration_approved") in told
    assert (7, "order_assigned") in told
    assert (8, "registration_rejected") in told
    with pytest.raises(Conflict) as error:
        await desk(couriers.decide_registration, DISPATCHER, ann.id, approve=False)
    assert error.value.code == "not_pending"
    with pytest.raises(Forbidden):
        await desk(couriers.decide_registration, 7, bob.id, approve=True)
    with pytest.raises(NotFound):
        await desk(couriers.decide_registration, DISPATCHER, 404, approve=True)


async def test_an_invite_pre_approves_once(desk: Desk, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    token = (await desk(invites.create_invite, DISPATCHER, private_chat=True)).token
    assert await desk(couriers.accept_invite, token, 7, None) is None  # to the dialog

    courier = await register(desk, 7, [ids["North"]], invite_token=token)

    assert courier.status is CourierStatus.ACTIVE
    with pytest.raises(NotFound) as error:
        await desk(couriers.accept_invite, token, 8, None)
    assert error.value.code == "invite_invalid"
    with pytest.raises(NotFound):
        await register(desk, 8, [ids["North"]], invite_token=token)
    with pytest.raises(Forbidden):
        await desk(couriers.my_card, 8, UTC_ZONE)


async def test_an_expired_invite_is_refused(desk: Desk, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    token = (await desk(invites.create_invite, DISPATCHER, private_chat=True)).token
    fake_clock.advance(days=8)
    with pytest.raises(NotFound):
        await register(desk, 7, [ids["North"]], invite_token=token)
    with pytest.raises(Forbidden):
        await desk(invites.create_invite, STRANGER, private_chat=True)


@pytest.mark.parametrize(
    ("name", "district_keys", "error", "code"),
    [
        ("", ["North"], InvalidInput, "courier_name_length"),
        ("z" * 65, ["North"], InvalidInput, "courier_name_length"),
        ("Ann", [], InvalidInput, "no_districts"),
        ("Ann", ["missing"], NotFound, "district_not_found"),
    ],
)
async def test_bad_registrations_are_refused(desk: Desk, name, district_keys, error, code):
    ids = await desk.add_districts("North")
    wanted = [ids.get(key, 999) for key in district_keys]
    with pytest.raises(error) as raised:
        await desk(couriers.register_courier, 7, name, wanted, approval_required=False)
    assert raised.value.code == code
    with pytest.raises(Forbidden):
        await desk(couriers.my_card, 7, UTC_ZONE)


async def test_registering_twice_is_refused(desk: Desk):
    ids = await desk.add_districts("North")
    await register(desk, 7, [ids["North"]])
    with pytest.raises(Conflict) as error:
        await register(desk, 7, [ids["North"]])
    assert error.value.code == "already_registered"


async def test_going_online_takes_the_oldest_waiting_order(desk: Desk, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    card = await desk(couriers.set_online, 1, False, UTC_ZONE)
    assert not card.courier.online
    first = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North one")
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North two")

    card = await desk(couriers.set_online, 1, True, UTC_ZONE)

    assert card.courier.online
    assert card.active_order is not None
    assert card.active_order.id == first.id


async def test_pending_and_blocked_couriers_cannot_start_a_shift(desk: Desk):
    ids = await desk.add_districts("North")
    pending = await register(desk, 7, [ids["North"]])
    with pytest.raises(Conflict) as error:
        await desk(couriers.set_online, 7, True, UTC_ZONE)
    assert error.value.code == "courier_pending"
    await desk(couriers.decide_registration, DISPATCHER, pending.id, approve=False)
    with pytest.raises(Conflict) as error:
        await desk(couriers.set_online, 7, False, UTC_ZONE)
    assert error.value.code == "courier_blocked"
    with pytest.raises(Forbidden):
        await desk(couriers.set_online, STRANGER, True, UTC_ZONE)


async def test_changing_districts_serves_from_the_new_ones(desk: Desk):
    ids = await desk.add_districts("North", "South")
    await desk.add_courier(1, [ids["North"]])
    south = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "South one")

    courier = await desk(couriers.set_districts, 1, [ids["South"]])

    assert courier.districts == ("South",)
    assert (await desk(orders.order_status, DISPATCHER, south.id)).courier_id == courier.id
    with pytest.raises(InvalidInput):
        await desk(couriers.set_districts, 1, [])


async def test_card_without_completed_orders_has_no_averages(desk: Desk):
    ids = await desk.add_districts("North")
    courier_id = await desk.add_courier(1, [ids["North"]])

    card = await desk(couriers.courier_card, DISPATCHER, courier_id, UTC_ZONE)

    assert card.total_completed == 0
    assert card.average_delivery is None
    assert card.average_per_day is None


async def test_card_averages_delivery_time_and_orders_per_local_day(
    desk: Desk, fake_clock: FakeClock
):
    ids = await desk.add_districts("North")
    courier_id = await desk.add_courier(1, [ids["North"]])

    async def deliver(minutes: int) -> None:
        order = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North x")
        fake_clock.advance(minutes=minutes)
        await desk(orders.complete_order, 1, order.id)

    # 2026-03-02 from 09:00 UTC: two deliveries, then one finished at 23:00 UTC,
    # which is already 2026-03-03 in Moscow (UTC+3) but still the 2nd in UTC.
    await deliver(10)
    await deliver(20)
    fake_clock.now = fake_clock.now.replace(hour=22)
    await deliver(30)
    current = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North now")

    in_utc = await desk(couriers.courier_card, DISPATCHER, courier_id, UTC_ZONE)
    in_moscow = await desk(couriers.my_card, 1, ZoneInfo("Europe/Moscow"))

    assert in_utc.total_completed == 3
    assert in_utc.average_delivery == timedelta(minutes=20)
    assert in_utc.average_per_day == 3.0
    assert in_moscow.average_per_day == 1.5
    assert in_utc.active_order is not None
    assert in_utc.active_order.id == current.id
    assert in_utc.active_order.status is OrderStatus.ASSIGNED


async def test_cards_are_for_staff_and_their_own_courier(desk: Desk):
    ids = await desk.add_districts("North")
    first = await desk.add_courier(1, [ids["North"]])
    await desk.add_courier(2, [ids["North"]])

    assert (await desk(couriers.courier_card, 1, first, UTC_ZONE)).courier.id == first
    with pytest.raises(Forbidden):
        await desk(couriers.courier_card, 2, first, UTC_ZONE)
    with pytest.raises(NotFound):
        await desk(couriers.courier_card, DISPATCHER, 404, UTC_ZONE)


async def test_courier_list_pages(desk: Desk):
    ids = await desk.add_districts("North")
    for telegram_id in range(1, 6):
        await desk.add_courier(telegram_id, [ids["North"]])

    page = await desk(couriers.list_couriers, DISPATCHER, 3, 3)

    assert page.total == 5
    assert [c.telegram_id for c in page.items] == [4, 5]
    with pytest.raises(Forbidden):
        await desk(couriers.list_couriers, 1, 0, 3)


async def test_district_form_marks_mine_and_refuses_the_blocked(desk: Desk):
    ids = await desk.add_districts("North", "South")
    await desk.add_courier(1, [ids["South"]])
    blocked = await register(desk, 2, [ids["North"]])
    await desk(couriers.decide_registration, DISPATCHER, blocked.id, approve=False)

    choices, chosen = await desk(couriers.district_form, 1)

    assert [d.name for d in choices] == ["North", "South"]
    assert chosen == [ids["South"]]
    with pytest.raises(Conflict) as error:
        await desk(couriers.district_form, 2)
    assert error.value.code == "courier_blocked"
    with pytest.raises(Forbidden):
        await desk(couriers.district_form, STRANGER)
