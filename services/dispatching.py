"""The assignment rules, shared by every use case that changes who carries what.

Callers hold the district locks (`uow.lock_districts`) of every district they touch
before they call in here. Both claims are compare-and-set, so even a caller that
forgot could not give one courier two orders or one order two couriers.

An order a dispatcher took from a courier remembers whom from (`taken_from_courier_id`);
nothing here gives it back to them. Only a dispatcher naming them can.
"""

from datetime import datetime

from db.models import Courier, Order
from db.uow import UnitOfWork
from services import notices
from services.errors import Conflict, ErrorCode
from services.notices import DispatchRequeued, WithdrawReason


class DispatchInvariantBroken(RuntimeError):
    """A queued order vanished under a district lock: a bug, never a user error."""


async def assign_free_courier(
    uow: UnitOfWork, order: Order, now: datetime, *, tell_dispatcher: bool
) -> Courier | None:
    """Give a queued order to the courier of its district who has been free the longest."""
    taken_from = order.taken_from_courier_id
    passed_over = set() if taken_from is None else {taken_from}
    while (
        courier_id := await uow.couriers.longest_free(order.district_id, excluding=passed_over)
    ) is not None:
        if (courier := await uow.couriers.claim(courier_id)) is not None:
            await hand_over(uow, order.id, courier, now, tell_dispatcher=tell_dispatcher)
            return courier
        passed_over.add(courier_id)  # claimed by another district's transaction meanwhile
    return None


async def serve_courier(uow: UnitOfWork, courier_id: int, now: datetime) -> None:
    """Give a free courier the oldest queued order of their districts that they may take."""
    order_id = await uow.orders.oldest_queued_for(courier_id)
    if order_id is not None and (courier := await uow.couriers.claim(courier_id)) is not None:
        await hand_over(uow, order_id, courier, now, tell_dispatcher=True)


async def hand_over(
    uow: UnitOfWork, order_id: int, courier: Courier, now: datetime, *, tell_dispatcher: bool
) -> None:
    """Assign a queued order to an already claimed courier and write who must hear of it."""
    order = await uow.orders.assign(order_id, courier.id, now)
    if order is None:
        raise DispatchInvariantBroken(f"order {order_id} was not queued under its district lock")
    district = await uow.districts.get(order.district_id)
    assert district is not None
    notices.order_assigned(uow, order, courier, district.name)
    if tell_dispatcher:
        notices.dispatch_assigned(uow, order, courier)


async def withdraw(
    uow: UnitOfWork, order: Order, courier: Courier, now: datetime, reason: WithdrawReason
) -> Order:
    """Take an order in progress from its courier: they are told and freed, and the order,
    queued again and remembering whom it was taken from, is returned."""
    requeued = await uow.orders.requeue(order.id, courier.id, now)
    if requeued is None:
        raise Conflict(ErrorCode.ORDER_CHANGED, order_id=order.id)
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


async def sweep_district(uow: UnitOfWork, district_id: int, now: datetime) -> int:
    """Assign the district's queued orders, oldest first, while its free couriers last.

    Returns how many were assigned. An order whose only free courier is the one it was
    taken from waits, and the orders behind it are still tried.
    """
    assigned, after = 0, 0
    while batch := await uow.orders.queued_in(district_id, after, limit=100):
        for order in batch:
            if await assign_free_courier(uow, order, now, tell_dispatcher=True):
                assigned += 1
            elif order.taken_from_courier_id is None:
                return assigned  # nobody at all is free here
        after = batch[-1].id
    return assigned
