"""Offers: a courier accepts or declines the order offered to them; deadlines fire.

Every outcome is a compare-and-set on the open offer, under the district locks, so an
Accept, a Decline, the deadline, a cancel, a reassignment and the end of a shift each decide
an offer at most once, on any number of instances. A tap that comes after the deadline is
too late even if the deadline has not fired yet: the time decides, not which runs first.
"""

from datetime import datetime

from db.models import Courier, Offer, OfferOutcome, Order
from db.uow import UnitOfWork
from services import clock, dispatching, notices
from services.access import require_courier
from services.errors import Conflict, ErrorCode, Forbidden, NotFound
from services.notices import DispatchAccepted, OfferAccepted
from services.queries import load_order_view
from services.read_models import OrderView

# Deadlines fired per transaction: a short hold on the write lock, however many are due.
EXPIRY_BATCH = 20

_CLOSED = {
    OfferOutcome.ACCEPTED: ErrorCode.OFFER_ACCEPTED,
    OfferOutcome.DECLINED: ErrorCode.OFFER_DECLINED,
    OfferOutcome.EXPIRED: ErrorCode.OFFER_EXPIRED,
    OfferOutcome.WITHDRAWN: ErrorCode.OFFER_WITHDRAWN,
}


async def accept_offer(uow: UnitOfWork, telegram_id: int, order_id: int) -> OrderView:
    """The courier takes the order offered to them: it is theirs, in progress."""
    async with uow.write():
        courier, offer, now = await _open_offer(uow, telegram_id, order_id)
        await uow.offers.decide(offer, OfferOutcome.ACCEPTED, now)
        order = await uow.orders.assign(order_id, courier.id, now)
        if order is None:
            raise dispatching.DispatchInvariantBroken(f"order {order_id} had an open offer")
        await uow.couriers.count_answer(courier.id, missed=False)
        district = await uow.districts.get(order.district_id)
        assert district is not None
        notices.to_courier(
            uow,
            courier,
            OfferAccepted(order_id=order.id, district=district.name, description=order.description),
        )
        seconds = int((now - offer.offered_at).total_seconds())
        accepted = DispatchAccepted(
            order_id=order.id, courier_id=courier.id, courier_name=courier.name, seconds=seconds
        )
        notices.to_dispatch_chat(uow, order, accepted)
        view = await load_order_view(uow, order)
        await uow.commit()
    return view


async def decline_offer(uow: UnitOfWork, telegram_id: int, order_id: int) -> int:
    """The courier does not want the order offered to them: it goes on to the next courier.
    Returns the order's number."""
    async with uow.write():
        courier, offer, now = await _open_offer(uow, telegram_id, order_id)
        await dispatching.refuse(uow, offer, courier, now)
        await uow.commit()
    return order_id


async def _open_offer(
    uow: UnitOfWork, telegram_id: int, order_id: int
) -> tuple[Courier, Offer, datetime]:
    """The courier, their open offer of this order, and the time, under the district locks;
    a typed error if the offer is not theirs or not open any more."""
    courier = await require_courier(uow, telegram_id)
    order = await _order(uow, order_id)
    await uow.lock_districts([order.district_id], of_couriers=[courier.id])
    now = clock.utcnow()
    offer = await uow.offers.open_for(order.id)
    if offer is None or offer.courier_id != courier.id or offer.expires_at <= now:
        raise await _closed(uow, order, courier, offer)
    return courier, offer, now


async def _closed(
    uow: UnitOfWork, order: Order, courier: Courier, open_offer: Offer | None
) -> Exception:
    """Why this courier's tap on the order's offer changes nothing."""
    if open_offer is not None and open_offer.courier_id == courier.id:
        return Conflict(ErrorCode.OFFER_EXPIRED, order_id=order.id)  # its deadline is firing
    last = await uow.offers.last_between(order.id, courier.id)
    if last is None or last.outcome is None:
        return Forbidden(ErrorCode.NOT_YOUR_ORDER, order_id=order.id)
    return Conflict(_CLOSED[last.outcome], order_id=order.id)


async def _order(uow: UnitOfWork, order_id: int) -> Order:
    order = await uow.orders.get(order_id)
    if order is None:
        raise NotFound(ErrorCode.ORDER_NOT_FOUND, order_id=str(order_id))
    return order


async def expire_due(uow: UnitOfWork, limit: int = EXPIRY_BATCH) -> int:
    """Fire the deadlines that have come, up to `limit` of them; how many were due (each run
    out here, or decided meanwhile elsewhere). Safe to run on every instance at once."""
    async with uow.read():  # most looks find nothing: no write lock for them
        if not await uow.offers.due(clock.utcnow(), 1):
            return 0
    async with uow.write():
        now = clock.utcnow()
        due = await uow.offers.due(now, limit)
        orders = await uow.orders.by_ids(offer.order_id for offer in due)
        await uow.lock_districts(
            (order.district_id for order in orders.values()),
            of_couriers=[offer.courier_id for offer in due],
        )
        couriers = await uow.couriers.by_ids(offer.courier_id for offer in due)
        for offer in due:
            await dispatching.refuse(uow, offer, couriers[offer.courier_id], now)
        await uow.commit()
    return len(due)


async def next_deadline(uow: UnitOfWork) -> datetime | None:
    """When the soonest open offer runs out; None when none is open."""
    async with uow.read():
        return await uow.offers.next_deadline()
