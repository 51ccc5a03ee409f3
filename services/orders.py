"""Order use cases: post, complete, cancel, reassign, look up, list, sweep."""

from db.models import Order, OrderStatus
from db.uow import UnitOfWork
from services import clock, dispatching, notifications
from services.access import require_courier, require_dispatcher
from services.districts import list_districts, match_district_prefix
from services.errors import Conflict, Forbidden, NotFound
from services.notifications import WithdrawReason
from services.snapshots import load_order_view, order_views
from services.validation import clean_description
from services.views import CompletionResult, DistrictView, OrderView, Page


async def post_order(
    uow: UnitOfWork,
    actor_id: int,
    chat_id: int,
    district_id: int,
    description: str,
    locale: str | None = None,
) -> OrderView:
    """Post an order and assign it at once to a free courier, or queue it."""
    await require_dispatcher(uow, actor_id)
    district = await uow.districts.get(district_id)
    if district is None:
        raise NotFound("district_not_found", district=str(district_id))
    return await _post(uow, actor_id, chat_id, district.id, description, locale)


async def post_order_text(
    uow: UnitOfWork, actor_id: int, chat_id: int, text: str, locale: str | None = None
) -> OrderView:
    """`<district> <description>`: the longest district name that prefixes the text wins."""
    await require_dispatcher(uow, actor_id)
    district, description = await match_district_prefix(uow, text)
    return await _post(uow, actor_id, chat_id, district.id, description, locale)


async def order_form(uow: UnitOfWork, actor_id: int) -> list[DistrictView]:
    """The districts a dispatcher can post an order to, for a step-by-step form."""
    await require_dispatcher(uow, actor_id)
    return await list_districts(uow)


async def complete_order(uow: UnitOfWork, actor_id: int, order_id: int) -> CompletionResult:
    """The assigned courier marks the order delivered and gets the next one waiting."""
    courier = await require_courier(uow, actor_id)
    order = await _get(uow, order_id)
    if order.courier_id != courier.id:
        raise Forbidden("not_your_order", order_id=order_id)
    if order.status == OrderStatus.COMPLETED:
        return await _already_completed(uow, order_id)
    if order.status != OrderStatus.ASSIGNED:
        raise Conflict("order_cancelled", order_id=order_id)
    now = clock.utcnow()
    await uow.lock_districts(await uow.couriers.district_ids(courier.id))
    if not await uow.orders.complete(order_id, courier.id, now):
        # A second tap that raced the first one is still just a second tap.
        order = await _get(uow, order_id)
        if order.status == OrderStatus.COMPLETED and order.courier_id == courier.id:
            return await _already_completed(uow, order_id)
        raise Conflict("order_changed", order_id=order_id)
    await uow.couriers.release(courier.id, now)
    order = await _get(uow, order_id)
    assert order.assigned_at is not None
    seconds = int((now - order.assigned_at).total_seconds())
    notifications.dispatch_completed(uow, order, courier, seconds)
    next_order = await _serve_if_available(uow, courier.id)
    result = CompletionResult(
        await _view(uow, order_id),
        False,
        await _view(uow, next_order.id) if next_order else None,
    )
    await uow.commit()
    return result


async def cancel_order(uow: UnitOfWork, actor_id: int, order_id: int) -> OrderView:
    """A dispatcher cancels a queued or assigned order; its courier is told and freed."""
    await require_dispatcher(uow, actor_id)
    order = await _get(uow, order_id)
    _require_active(order)
    courier_id = order.courier_id
    await _lock_for(uow, order, courier_id)
    now = clock.utcnow()
    if not await uow.orders.cancel(order, now):
        raise Conflict("order_changed", order_id=order_id)
    if courier_id is not None:
        await _withdraw(uow, order, courier_id, WithdrawReason.CANCELLED)
        await uow.couriers.release(courier_id, now)
        await _serve_if_available(uow, courier_id)
    view = await _view(uow, order_id)
    await uow.commit()
    return view


async def reassign_order(
    uow: UnitOfWork, actor_id: int, order_id: int, courier_id: int | None
) -> OrderView:
    """Take an order from its courier and give it to `courier_id`, or back to the queue."""
    await require_dispatcher(uow, actor_id)
    order = await _get(uow, order_id)
    if order.status != OrderStatus.ASSIGNED or order.courier_id is None:
        raise Conflict("order_not_in_progress", order_id=order_id)
    previous_id = order.courier_id
    if courier_id == previous_id:
        raise Conflict("already_assigned_to", order_id=order_id, courier_id=courier_id)
    await _lock_for(uow, order, previous_id, courier_id)
    now = clock.utcnow()
    if not await uow.orders.requeue(order_id, previous_id, now):
        raise Conflict("order_changed", order_id=order_id)
    order = await _get(uow, order_id)
    await _withdraw(uow, order, previous_id, WithdrawReason.REASSIGNED)
    if courier_id is None:
        await _requeue(uow, order)
    else:
        await _assign_to(uow, order, courier_id)
    # The previous courier is free again, but must not get this very order back.
    await uow.couriers.release(previous_id, now)
    await _serve_if_available(uow, previous_id, skip_order_id=order_id)
    view = await _view(uow, order_id)
    await uow.commit()
    return view


async def order_status(uow: UnitOfWork, actor_id: int, order_id: int) -> OrderView:
    """Dispatchers see any order; a courier sees the orders they carry or carried."""
    courier = await uow.couriers.by_telegram_id(actor_id)
    if courier is None:
        await require_dispatcher(uow, actor_id)
    view = await load_order_view(uow, order_id)
    if view is None:
        raise NotFound("order_not_found", order_id=order_id)
    if courier is not None and view.courier_id != courier.id:
        await require_dispatcher(uow, actor_id)
    return view


async def active_orders(uow: UnitOfWork, actor_id: int, offset: int, limit: int) -> Page[OrderView]:
    """Orders in progress, then queued ones, for dispatchers."""
    await require_dispatcher(uow, actor_id)
    orders = await uow.orders.active_page(max(offset, 0), limit)
    total = await uow.orders.count_active()
    return Page(tuple(await order_views(uow, orders)), max(offset, 0), total)


async def sweep_queue(uow: UnitOfWork) -> int:
    """The safety net: assign whatever queued order a free courier can take. For the scheduler."""
    assigned = await dispatching.sweep(uow, clock.utcnow())
    await uow.commit()
    return assigned


async def _post(
    uow: UnitOfWork,
    actor_id: int,
    chat_id: int,
    district_id: int,
    description: str,
    locale: str | None,
) -> OrderView:
    description = clean_description(description)
    now = clock.utcnow()
    await uow.lock_districts([district_id])
    order = await uow.orders.add(district_id, description, actor_id, chat_id, locale, now)
    await dispatching.assign_free_courier(uow, order, now, tell_dispatcher=False)
    view = await _view(uow, order.id)
    await uow.commit()
    return view


async def _get(uow: UnitOfWork, order_id: int) -> Order:
    order = await uow.orders.get(order_id)
    if order is None:
        raise NotFound("order_not_found", order_id=order_id)
    return order


async def _view(uow: UnitOfWork, order_id: int) -> OrderView:
    view = await load_order_view(uow, order_id)
    assert view is not None
    return view


async def _already_completed(uow: UnitOfWork, order_id: int) -> CompletionResult:
    return CompletionResult(await _view(uow, order_id), already_completed=True, next_order=None)


def _require_active(order: Order) -> None:
    if order.status == OrderStatus.COMPLETED:
        raise Conflict("order_completed", order_id=order.id)
    if order.status == OrderStatus.CANCELLED:
        raise Conflict("order_cancelled", order_id=order.id)


async def _lock_for(uow: UnitOfWork, order: Order, *courier_ids: int | None) -> None:
    """Lock the order's district and every district of the couriers involved."""
    district_ids = [order.district_id]
    for courier_id in courier_ids:
        if courier_id is not None:
            district_ids += await uow.couriers.district_ids(courier_id)
    await uow.lock_districts(district_ids)


async def _withdraw(uow: UnitOfWork, order: Order, courier_id: int, reason: WithdrawReason) -> None:
    """Tell the order's former courier that their order message is void."""
    courier = await uow.couriers.get(courier_id)
    assert courier is not None
    notifications.order_withdrawn(uow, order, courier, reason)


async def _requeue(uow: UnitOfWork, order: Order) -> None:
    """Back to the queue: another free courier takes it now, or the dispatcher hears its place."""
    if (
        await dispatching.assign_free_courier(uow, order, clock.utcnow(), tell_dispatcher=True)
        is None
    ):
        notifications.dispatch_requeued(uow, order, await uow.orders.queue_position(order))


async def _assign_to(uow: UnitOfWork, order: Order, courier_id: int) -> None:
    courier = await uow.couriers.get(courier_id)
    if courier is None:
        raise NotFound("courier_not_found", courier_id=courier_id)
    if not await uow.couriers.claim(courier_id):
        raise Conflict("courier_unavailable", courier_id=courier_id, name=courier.name)
    await dispatching.hand_over(uow, order.id, courier_id, clock.utcnow(), tell_dispatcher=True)


async def _serve_if_available(
    uow: UnitOfWork, courier_id: int, skip_order_id: int | None = None
) -> Order | None:
    return await dispatching.serve_courier(
        uow, courier_id, clock.utcnow(), skip_order_id=skip_order_id
    )
