"""The assignment rules, shared by every use case that changes who carries what.

Callers hold the district locks (`uow.lock_districts`) of every district they touch
before they call in here. Both claims are compare-and-set, so even a caller that
forgot could not give one courier two orders or one order two couriers.
"""

from datetime import datetime

from db.models import Courier, Order
from db.uow import UnitOfWork
from services import notifications


class DispatchInvariantBroken(RuntimeError):
    """A queued order vanished under a district lock: a bug, never a user error."""


async def assign_free_courier(
    uow: UnitOfWork, order: Order, now: datetime, *, tell_dispatcher: bool
) -> Courier | None:
    """Give a queued order to the courier of its district who has been free the longest."""
    while (courier_id := await uow.couriers.find_free_for_district(order.district_id)) is not None:
        if await uow.couriers.claim(courier_id):
            return await hand_over(uow, order.id, courier_id, now, tell_dispatcher=tell_dispatcher)
    return None


async def serve_courier(
    uow: UnitOfWork, courier_id: int, now: datetime, *, skip_order_id: int | None = None
) -> Order | None:
    """Give a free courier the oldest queued order of their districts, if any."""
    district_ids = await uow.couriers.district_ids(courier_id)
    order_id = await uow.orders.oldest_queued(district_ids, skip_order_id=skip_order_id)
    if order_id is None or not await uow.couriers.claim(courier_id):
        return None
    await hand_over(uow, order_id, courier_id, now, tell_dispatcher=True)
    return await uow.orders.get(order_id)


async def hand_over(
    uow: UnitOfWork, order_id: int, courier_id: int, now: datetime, *, tell_dispatcher: bool
) -> Courier:
    """Assign a queued order to an already claimed courier and write who must hear of it."""
    if not await uow.orders.assign(order_id, courier_id, now):
        raise DispatchInvariantBroken(f"order {order_id} was not queued under its district lock")
    order = await uow.orders.get(order_id)
    courier = await uow.couriers.get(courier_id)
    assert order is not None
    assert courier is not None
    district = await uow.districts.get(order.district_id)
    assert district is not None
    notifications.order_assigned(uow, order, courier, district.name)
    if tell_dispatcher:
        notifications.dispatch_assigned(uow, order, courier)
    return courier


async def sweep(uow: UnitOfWork, now: datetime, limit: int = 500) -> int:
    """Assign every queued order that a free courier can take now; returns how many were."""
    locked = {order.district_id for order in await uow.orders.queued(limit)}
    await uow.lock_districts(locked)
    assigned = 0
    for order in await uow.orders.queued(limit):
        if order.district_id in locked and await assign_free_courier(
            uow, order, now, tell_dispatcher=True
        ):
            assigned += 1
    return assigned
