"""The assignment rules, shared by every use case that changes who carries what.

Callers hold the district locks (`uow.lock_districts`) of every district they touch
before they call in here. Both claims are compare-and-set, so even a caller that
forgot could not give one courier two orders or one order two couriers.

With OFFER_SECONDS set (`uow.rules.offer_seconds`), an order is offered, not assigned: the
courier is held while the offer stands, and accepts, declines or lets it run out
(services.offers). An order a dispatcher took from a courier remembers whom from
(`taken_from_courier_id`), and its offers remember who declined it or let it run out;
nothing here gives it back to them. Only a dispatcher naming them can.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from db.models import Courier, Offer, OfferOutcome, Order, OrderEventKind, Point
from db.uow import UnitOfWork
from services import geo, notices
from services.errors import Conflict, ErrorCode
from services.notices import (
    DispatchRefused,
    DispatchRequeued,
    OfferRefused,
    OffersMissed,
    WithdrawReason,
)


class DispatchInvariantBroken(RuntimeError):
    """A queued order vanished under a district lock: a bug, never a user error."""


@dataclass(frozen=True, slots=True)
class Given:
    """Whom an order went to, and how far from its pickup they were (None: not known)."""

    courier: Courier
    distance_m: float | None


async def assign_free_courier(
    uow: UnitOfWork, order: Order, now: datetime, *, tell_dispatcher: bool
) -> Given | None:
    """Give a queued order to the free courier of its district that the rule ranks first
    (`next_courier`), among those it was not taken from and who did not refuse it."""
    passed_over = await uow.offers.refused_by(order.id) if order.refusals else set()
    if order.taken_from_courier_id is not None:
        passed_over.add(order.taken_from_courier_id)
    while (ranked := await next_courier(uow, order, now, passed_over)) is not None:
        courier_id, distance_m = ranked
        if (courier := await uow.couriers.claim(courier_id)) is not None:
            given = Given(courier, distance_m)
            await give(uow, order.id, given, now, tell_dispatcher=tell_dispatcher)
            return given
        passed_over.add(courier_id)  # claimed by another district's transaction meanwhile
    return None


async def next_courier(
    uow: UnitOfWork, order: Order, now: datetime, passed_over: Collection[int]
) -> tuple[int, float | None] | None:
    """The free courier an order should go to, and their distance from it.

    With DISPATCH_RULE=nearest and a point on the order: the nearest courier with a fresh
    position (ties: free the longest, then the lower id); then, or else, the one free the
    longest."""
    origin = order.origin
    if uow.rules.nearest and origin is not None:
        nearest = await nearest_free(uow, order.district_id, origin, now, passed_over)
        if nearest is not None:
            return nearest
    courier_id = await uow.couriers.longest_free(order.district_id, excluding=passed_over)
    return None if courier_id is None else (courier_id, None)


async def nearest_free(
    uow: UnitOfWork, district_id: int, point: Point, now: datetime, passed_over: Collection[int]
) -> tuple[int, float] | None:
    """The district's free courier nearest the point, by the positions that are fresh, and
    their distance; read area by area (services.geo), the smallest first, until the nearest
    found is surely nearer than anyone outside."""
    best: tuple[float, datetime, int] | None = None
    for area in geo.areas(point):
        found = await uow.positions.free_near(district_id, area.ranges, now, passed_over)
        if found:
            best = min(
                (geo.distance_m(point, Point(c.lat, c.lon)), c.free_since, c.courier_id)
                for c in found
            )
            if best[0] <= area.reach_m:
                break
    return None if best is None else (best[2], best[0])


async def serve_courier(uow: UnitOfWork, courier_id: int, now: datetime) -> None:
    """Give a free courier the oldest queued order of their districts that they may take."""
    order_id = await uow.orders.oldest_queued_for(courier_id)
    if order_id is not None and (courier := await uow.couriers.claim(courier_id)) is not None:
        await give(
            uow, order_id, await given_to(uow, order_id, courier, now), now, tell_dispatcher=True
        )


async def given_to(uow: UnitOfWork, order_id: int, courier: Courier, now: datetime) -> Given:
    """An order for a courier chosen otherwise than by `next_courier` (they freed up, a
    dispatcher named them), with their distance when it is known."""
    order = await uow.orders.get(order_id)
    if order is None or (origin := order.origin) is None:
        return Given(courier, None)
    position = await uow.positions.get(courier.id)
    if position is None or position.fresh_until <= now:
        return Given(courier, None)
    return Given(courier, geo.distance_m(origin, Point(position.lat, position.lon)))


async def give(
    uow: UnitOfWork, order_id: int, given: Given, now: datetime, *, tell_dispatcher: bool
) -> None:
    """Offer a queued order to an already claimed courier, or, with offers off, hand it over.
    A courier created over HTTP who has no Telegram yet cannot answer: they get it outright."""
    if uow.rules.offer_seconds > 0 and given.courier.telegram_id is not None:
        await offer(uow, order_id, given.courier, now)
    else:
        await hand_over(uow, order_id, given, now, tell_dispatcher=tell_dispatcher)


async def offer(uow: UnitOfWork, order_id: int, courier: Courier, now: datetime) -> None:
    """Offer a queued order to an already claimed courier until OFFER_SECONDS from now."""
    order = await uow.orders.offer(order_id, courier.id, now)
    if order is None:
        raise DispatchInvariantBroken(f"order {order_id} was not queued under its district lock")
    expires_at = now + timedelta(seconds=uow.rules.offer_seconds)
    await uow.offers.open(order.id, courier.id, now, expires_at)
    district = await uow.districts.get(order.district_id)
    assert district is not None
    notices.order_offered(uow, order, courier, district.name, expires_at)


async def hand_over(
    uow: UnitOfWork, order_id: int, given: Given, now: datetime, *, tell_dispatcher: bool
) -> None:
    """Assign a queued order to an already claimed courier and write who must hear of it."""
    order = await uow.orders.assign(order_id, given.courier.id, now)
    if order is None:
        raise DispatchInvariantBroken(f"order {order_id} was not queued under its district lock")
    district = await uow.districts.get(order.district_id)
    assert district is not None
    notices.order_assigned(uow, order, given.courier, district.name)
    if tell_dispatcher:
        notices.dispatch_assigned(uow, order, given.courier, given.distance_m)


async def withdraw(
    uow: UnitOfWork, order: Order, courier: Courier, now: datetime, reason: WithdrawReason
) -> Order:
    """Take an order in progress (or offered) from its courier: they are told and freed, and
    the order, queued again and remembering whom it was taken from, is returned."""
    requeued = await uow.orders.requeue(order.id, courier.id, now)
    if requeued is None:
        raise Conflict(ErrorCode.ORDER_CHANGED, order_id=order.id)
    await close_offer(uow, order.id, now)
    notices.order_withdrawn(uow, requeued, courier, reason)
    await uow.couriers.release(courier.id, now)
    return requeued


async def take_back(
    uow: UnitOfWork, order: Order, courier: Courier, now: datetime, reason: WithdrawReason
) -> None:
    """Return an order in progress to the queue: another free courier of its district takes
    it now, or the dispatch chat hears its place in line."""
    requeued = await withdraw(uow, order, courier, now, reason)
    if await assign_free_courier(uow, requeued, now, tell_dispatcher=True) is None:
        position = await uow.orders.queue_position(requeued)
        notices.to_dispatch_chat(
            uow, requeued, DispatchRequeued(order_id=order.id, position=position)
        )


async def close_offer(uow: UnitOfWork, order_id: int, now: datetime) -> None:
    """The order's open offer, if any, is withdrawn: it was cancelled or taken back first."""
    offer = await uow.offers.open_for(order_id)
    if offer is not None:
        await uow.offers.decide(offer, OfferOutcome.WITHDRAWN, now)


async def refuse(uow: UnitOfWork, offer: Offer, courier: Courier, now: datetime) -> bool:
    """The courier declined an open offer, or (once its deadline has come) let it run out.

    The order goes to the next courier who may take it, or waits; the courier is free (and
    offered the oldest order waiting that they may take), or off shift after
    OFFER_MISSES_TO_OFFLINE offers they saw run out in a row. False if the offer was decided
    already.
    """
    expired = offer.expires_at <= now
    outcome = OfferOutcome.EXPIRED if expired else OfferOutcome.DECLINED
    if not await uow.offers.decide(offer, outcome, now):
        return False
    order = await uow.orders.refuse(offer.order_id, courier.id, OrderEventKind(outcome), now)
    if order is None:
        raise DispatchInvariantBroken(f"order {offer.order_id} had an open offer, not offered")
    notices.to_courier(uow, courier, OfferRefused(order_id=order.id, expired=expired))
    await uow.couriers.release(courier.id, now)
    if not expired:
        missed = await uow.couriers.count_answer(courier.id, missed=False)
    elif await _seen(uow, offer, courier):
        missed = await uow.couriers.count_answer(courier.id, missed=True)
    else:
        missed = courier.missed_offers  # not held against them, nor a sign they are there
    if missed >= uow.rules.misses_to_offline:
        await uow.couriers.set_online(courier.id, False, now)
        notices.to_courier(uow, courier, OffersMissed(courier_id=courier.id, missed=missed))
    waits = await assign_free_courier(uow, order, now, tell_dispatcher=True) is None
    if missed < uow.rules.misses_to_offline:
        await serve_courier(uow, courier.id, now)
    if waits:
        await _tell_refused(uow, order)
    return True


async def _seen(uow: UnitOfWork, offer: Offer, courier: Courier) -> bool:
    """Whether the offer reached the courier before it ran out: one that Telegram could not
    deliver in time (an outage, the flood limits) is not held against them."""
    if courier.telegram_id is None:
        return True
    kind = notices.kind_of(notices.OrderOffered)
    return await uow.outbox.sent_between(
        courier.telegram_id, kind, offer.order_id, offer.offered_at, offer.expires_at
    )


async def _tell_refused(uow: UnitOfWork, order: Order) -> None:
    """A refused order waits: when couriers are free but refused it (not just all busy, nor
    the refuser handed another order), its dispatch chat hears so."""
    if await uow.couriers.longest_free(order.district_id) is None:
        return  # it waits its turn, as any order does while every courier is busy
    position = await uow.orders.queue_position(order)
    notice = DispatchRefused(order_id=order.id, couriers=order.refusals, position=position)
    notices.to_dispatch_chat(uow, order, notice)


async def sweep_district(uow: UnitOfWork, district_id: int, now: datetime) -> int:
    """Assign (or offer) the district's queued orders, oldest first, while its free couriers
    last.

    Returns how many were given out. An order whose only free couriers are the one it was
    taken from and those who refused it waits, and the orders behind it are still tried.
    """
    assigned, after = 0, 0
    while batch := await uow.orders.queued_in(district_id, after, limit=100):
        for order in batch:
            if await assign_free_courier(uow, order, now, tell_dispatcher=True):
                assigned += 1
            elif await uow.couriers.longest_free(district_id) is None:
                return assigned  # nobody at all is free here
        after = batch[-1].id
    return assigned
