"""Offers on both databases: each transition, and each race decided exactly once."""

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import Offer, OrderEvent, OrderStatus
from db.uow import DispatchRules, UnitOfWorkFactory
from services import couriers, offers, orders, outbox, shops, statistics
from services.errors import Conflict, DomainError, ErrorCode, Forbidden
from services.read_models import OrderView
from tests.conftest import FakeClock
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

OFFER_SECONDS = 60
UTC_ZONE = ZoneInfo("UTC")


@pytest.fixture
def desk(engine: AsyncEngine) -> Desk:
    return Desk(UnitOfWorkFactory(engine, rules=DispatchRules(OFFER_SECONDS, 2)))


@pytest.fixture
async def north(desk: Desk) -> int:
    await desk.staff_up()
    return (await desk.add_districts("North"))["North"]


async def post(desk: Desk, district: int, text: str = "soup") -> OrderView:
    return await desk(orders.post_order, DISPATCHER, DISPATCH_CHAT, district, text)


async def order(desk: Desk, order_id: int) -> OrderView:
    return await desk(orders.order_status, DISPATCHER, order_id)


async def history(desk: Desk, order_id: int) -> list[tuple[str, int | None]]:
    uow = desk.uow_factory()
    async with uow.read():
        events = await uow.session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
        return [(e.kind.value, e.courier_id) for e in events]


async def outcomes(desk: Desk, order_id: int) -> list[tuple[int, str | None]]:
    uow = desk.uow_factory()
    async with uow.read():
        rows = await uow.session.scalars(
            select(Offer).where(Offer.order_id == order_id).order_by(Offer.id)
        )
        return [(o.courier_id, o.outcome.value if o.outcome else None) for o in rows]


def told(
    outbox: list[tuple[int, str, dict[str, Any]]], chat: int, notice: str
) -> list[dict[str, Any]]:
    return [payload for c, kind, payload in outbox if c == chat and kind == notice]


async def delivered(desk: Desk) -> None:
    """The outbox sender's part: every notice written so far reaches its chat, now."""
    lease = timedelta(seconds=60)
    while rows := await desk(outbox.claim, "test", chats=100, per_chat=100, lease=lease):
        sent = [outbox.Sent(row.id, 1000 + row.id) for row in rows]
        await desk(outbox.record, "test", sent)


async def refused(desk: Desk, courier_telegram_id: int, order_id: int) -> ErrorCode:
    with pytest.raises(DomainError) as caught:
        await desk(offers.accept_offer, courier_telegram_id, order_id)
    return caught.value.code


async def test_an_order_is_offered_to_the_courier_free_the_longest(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await desk.add_courier(1, [north])
    fake_clock.advance(seconds=1)
    await desk.add_courier(2, [north])

    posted = await post(desk, north)

    assert posted.status is OrderStatus.OFFERED
    assert (posted.courier_id, posted.offer_expires_at) == (
        1,
        fake_clock.now + timedelta(seconds=60),
    )
    outbox = await desk.outbox()
    (offered,) = told(outbox, 1, "order_offered")
    assert offered["expires_at"].startswith(fake_clock.now.date().isoformat())
    (answer,) = told(outbox, DISPATCH_CHAT, "order_posted")
    assert (answer["courier_id"], answer["offered"]) == (1, True)
    assert (await desk(couriers.courier_card, DISPATCHER, 1, UTC_ZONE)).courier.busy
    # Held: the next order goes to the other courier, and a third waits.
    assert (await post(desk, north)).courier_id == 2
    assert (await post(desk, north)).status is OrderStatus.QUEUED


async def test_accepting_in_time_assigns_it_and_tells_the_dispatch_chat(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await desk.add_courier(1, [north])
    posted = await post(desk, north)
    fake_clock.advance(seconds=12)

    accepted = await desk(offers.accept_offer, 1, posted.id)

    assert accepted.status is OrderStatus.ASSIGNED
    assert accepted.assigned_at == fake_clock.now
    outbox = await desk.outbox()
    assert told(outbox, 1, "offer_accepted") == [
        {"order_id": posted.id, "district": "North", "description": "soup"}
    ]
    (dispatch,) = told(outbox, DISPATCH_CHAT, "dispatch_accepted")
    assert (dispatch["courier_id"], dispatch["seconds"]) == (1, 12)
    assert await history(desk, posted.id) == [("created", None), ("offered", 1), ("assigned", 1)]
    assert await refused(desk, 1, posted.id) is ErrorCode.OFFER_ACCEPTED
    done = await desk(orders.complete_order, 1, posted.id)
    assert done.order.status is OrderStatus.COMPLETED


async def test_a_decline_passes_it_on_at_once_and_never_back(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await desk.add_courier(1, [north])
    fake_clock.advance(seconds=1)
    await desk.add_courier(2, [north])
    posted = await post(desk, north)

    await desk(offers.decline_offer, 1, posted.id)

    assert (await order(desk, posted.id)).courier_id == 2
    assert told(await desk.outbox(), 1, "offer_refused") == [
        {"order_id": posted.id, "expired": False}
    ]
    await desk(offers.decline_offer, 2, posted.id)
    # Both refused it: it waits, and the chat hears so.
    waiting = await order(desk, posted.id)
    assert (waiting.status, waiting.queue_position) == (OrderStatus.QUEUED, 1)
    (heard,) = told(await desk.outbox(), DISPATCH_CHAT, "dispatch_refused")
    assert heard == {"order_id": posted.id, "couriers": 2, "position": 1}
    # A courier who frees up is offered it unless they refused it; a newcomer is.
    await desk(couriers.set_online, 1, False, UTC_ZONE)
    await desk(couriers.set_online, 1, True, UTC_ZONE)
    assert (await order(desk, posted.id)).status is OrderStatus.QUEUED
    await desk.add_courier(3, [north])
    assert (await order(desk, posted.id)).courier_id == 3
    assert await refused(desk, 1, posted.id) is ErrorCode.OFFER_DECLINED
    assert await outcomes(desk, posted.id) == [(1, "declined"), (2, "declined"), (3, None)]


async def test_the_deadline_passes_it_on_and_two_misses_end_the_shift(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await desk.add_courier(1, [north])
    first = await post(desk, north)
    await delivered(desk)
    fake_clock.advance(seconds=59)
    assert await desk(offers.expire_due) == 0
    fake_clock.advance(seconds=1)

    assert await desk(offers.expire_due) == 1

    assert (await order(desk, first.id)).status is OrderStatus.QUEUED
    assert await history(desk, first.id) == [("created", None), ("offered", 1), ("expired", 1)]
    assert await refused(desk, 1, first.id) is ErrorCode.OFFER_EXPIRED
    # Still on shift and free: the next order is offered to them, and missed too.
    second = await post(desk, north)
    assert (await order(desk, second.id)).courier_id == 1
    await delivered(desk)
    fake_clock.advance(seconds=60)
    await desk(offers.expire_due)
    card = await desk(couriers.my_card, 1, UTC_ZONE)
    assert not card.courier.online
    assert told(await desk.outbox(), 1, "offers_missed") == [{"courier_id": 1, "missed": 2}]
    # Coming back starts the count again; a decline does not count as a miss.
    await desk(couriers.set_online, 1, True, UTC_ZONE)
    third = await post(desk, north)
    assert third.courier_id == 1
    await desk(offers.decline_offer, 1, third.id)
    assert (await desk(couriers.my_card, 1, UTC_ZONE)).courier.online


async def test_an_offer_telegram_did_not_deliver_in_time_is_no_miss(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await desk.add_courier(1, [north])
    for _ in range(3):  # Telegram is down: none of the offers reaches the courier
        posted = await post(desk, north)
        fake_clock.advance(seconds=60)
        await desk(offers.expire_due)
        await desk(orders.cancel_order, DISPATCHER, posted.id)

    assert (await desk(couriers.my_card, 1, UTC_ZONE)).courier.online
    assert told(await desk.outbox(), 1, "offers_missed") == []


async def test_a_tap_after_the_deadline_is_too_late_even_before_it_fires(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await desk.add_courier(1, [north])
    posted = await post(desk, north)
    fake_clock.advance(seconds=60)

    assert await refused(desk, 1, posted.id) is ErrorCode.OFFER_EXPIRED
    with pytest.raises(Conflict):
        await desk(offers.decline_offer, 1, posted.id)
    assert (await order(desk, posted.id)).status is OrderStatus.OFFERED
    await desk(offers.expire_due)
    assert await outcomes(desk, posted.id) == [(1, "expired")]


async def test_someone_else_cannot_answer_an_offer(desk: Desk, north: int):
    await desk.add_courier(1, [north])
    await desk.add_courier(2, [north])
    posted = await post(desk, north)

    with pytest.raises(Forbidden):
        await desk(offers.accept_offer, 2, posted.id)
    with pytest.raises(Forbidden):
        await desk(offers.accept_offer, DISPATCHER, posted.id)
    with pytest.raises(Forbidden):
        await desk(orders.complete_order, 2, posted.id)
    with pytest.raises(Conflict):  # offered is not in progress
        await desk(orders.complete_order, 1, posted.id)
    assert await outcomes(desk, posted.id) == [(1, None)]


async def test_a_cancel_reassign_or_end_of_shift_withdraws_the_offer(desk: Desk, north: int):
    for telegram_id in (1, 2, 3):
        await desk.add_courier(telegram_id, [north])
    cancelled = await post(desk, north)  # to 1
    reassigned = await post(desk, north)  # to 2
    returned = await post(desk, north)  # to 3

    await desk(orders.cancel_order, DISPATCHER, cancelled.id)
    await desk(orders.reassign_order, DISPATCHER, reassigned.id, 1)  # to 1, now free
    await desk(couriers.end_shift, DISPATCHER, 3)

    assert await refused(desk, 1, cancelled.id) is ErrorCode.OFFER_WITHDRAWN
    assert await refused(desk, 2, reassigned.id) is ErrorCode.OFFER_WITHDRAWN
    assert await refused(desk, 3, returned.id) is ErrorCode.OFFER_WITHDRAWN
    assert (await order(desk, reassigned.id)).status is OrderStatus.ASSIGNED  # outright
    # The order taken from 3 went to 2, freed by the reassignment, as an offer.
    assert (await order(desk, returned.id)).courier_id == 2
    withdrawn = [p["order_id"] for c, k, p in await desk.outbox() if k == "order_withdrawn"]
    assert sorted(withdrawn) == sorted([cancelled.id, reassigned.id, returned.id])


async def test_going_offline_passes_an_offer_on_but_keeps_an_order(desk: Desk, north: int):
    await desk.add_courier(1, [north])
    await desk.add_courier(2, [north])
    offered = await post(desk, north)  # to 1
    carried = await post(desk, north)  # to 2
    await desk(offers.accept_offer, 2, carried.id)

    await desk(couriers.set_online, 1, False, UTC_ZONE)
    await desk(couriers.set_online, 2, False, UTC_ZONE)

    assert (await order(desk, offered.id)).status is OrderStatus.QUEUED
    assert (await order(desk, carried.id)).courier_id == 2


async def test_a_courier_without_telegram_is_assigned_outright(desk: Desk, north: int):
    shop = await desk(shops.unnamed)
    await desk(couriers.create_courier, shop, "Ann", ["North"])

    posted = await desk(orders.post_order_for_shop, shop, "North", "soup", queue=False)

    assert posted.status is OrderStatus.ASSIGNED


async def test_two_accepts_at_once_have_one_winner(desk: Desk, north: int):
    await desk.add_courier(1, [north])
    posted = await post(desk, north)

    results = await asyncio.gather(
        *(desk(offers.accept_offer, 1, posted.id) for _ in range(4)), return_exceptions=True
    )

    winners = [r for r in results if isinstance(r, OrderView)]
    losers = [r.code for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1
    assert losers == [ErrorCode.OFFER_ACCEPTED] * 3
    assert await outcomes(desk, posted.id) == [(1, "accepted")]


@pytest.mark.parametrize("rounds", [10])
async def test_an_accept_racing_a_cancel_or_a_decline_is_one_or_the_other(
    desk: Desk, north: int, rounds: int
):
    await desk.add_courier(1, [north])
    for _ in range(rounds):
        posted = await post(desk, north)
        results = await asyncio.gather(
            desk(offers.accept_offer, 1, posted.id),
            desk(orders.cancel_order, DISPATCHER, posted.id),
            desk(offers.decline_offer, 1, posted.id),
            return_exceptions=True,
        )
        unexpected = [
            r for r in results if isinstance(r, Exception) and not isinstance(r, DomainError)
        ]
        assert unexpected == []
        decided = await outcomes(desk, posted.id)
        assert len(decided) == 1
        assert decided[0][1] in ("accepted", "declined", "withdrawn")
        final = await order(desk, posted.id)
        if final.status is OrderStatus.ASSIGNED:
            await desk(orders.complete_order, 1, final.id)
        elif final.status is not OrderStatus.CANCELLED:
            await desk(orders.cancel_order, DISPATCHER, final.id)
        assert not (await desk(couriers.my_card, 1, UTC_ZONE)).courier.busy


async def test_acceptance_figures_over_seven_days(desk: Desk, north: int, fake_clock: FakeClock):
    await desk.add_courier(1, [north])
    for wait in (10, 20):
        posted = await post(desk, north)
        fake_clock.advance(seconds=wait)
        await desk(offers.accept_offer, 1, posted.id)
        await desk(orders.complete_order, 1, posted.id)
    declined = await post(desk, north)
    await desk(offers.decline_offer, 1, declined.id)
    await desk(orders.cancel_order, DISPATCHER, declined.id)
    missed = await post(desk, north)
    fake_clock.advance(seconds=61)
    await desk(offers.expire_due)
    await desk(orders.cancel_order, DISPATCHER, missed.id)
    withdrawn = await post(desk, north)
    await desk(orders.cancel_order, DISPATCHER, withdrawn.id)  # not theirs to answer

    card = await desk(couriers.my_card, 1, UTC_ZONE)

    assert card.acceptance is not None
    assert (card.acceptance.offers, card.acceptance.accepted) == (4, 2)
    assert card.acceptance.median_to_accept == timedelta(seconds=15)
    today = await desk(statistics.today, DISPATCHER, UTC_ZONE)
    assert today.couriers[0].acceptance == card.acceptance
    fake_clock.advance(days=8)
    assert (await desk(couriers.my_card, 1, UTC_ZONE)).acceptance is None


async def test_the_chat_hears_nothing_when_the_decliner_takes_the_next_order(
    desk: Desk, north: int
):
    await desk.add_courier(1, [north])
    await desk.add_courier(2, [north])
    first = await post(desk, north)  # to 1
    await post(desk, north)  # to 2
    third = await post(desk, north)  # waits

    await desk(offers.decline_offer, 1, first.id)

    assert (await order(desk, third.id)).courier_id == 1  # the oldest they may take
    assert told(await desk.outbox(), DISPATCH_CHAT, "dispatch_refused") == []
