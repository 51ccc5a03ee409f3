"""Order use cases: post, complete, cancel, reassign, look up, list, sweep, overdue reminders."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from db.models import Courier, Order, OrderSource, OrderStatus, Point
from db.uow import UnitOfWork
from services import clock, dispatching, notices
from services.access import Actor, Shop, require_courier, require_dispatcher
from services.districts import all_districts, district_named, match_district_prefix
from services.errors import Conflict, ErrorCode, Forbidden, NotFound
from services.notices import DispatchCompleted, DispatchOverdue, OrderOverdue, WithdrawReason
from services.queries import load_order_view, order_views
from services.read_models import CompletionResult, DistrictView, OrderView, Page
from services.validation import clean_description, clean_point, name_key, page_window

# An order's number, as people in Telegram know it, or its public id, as the HTTP API does.
OrderKey = int | UUID


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: OrderStatus | None = None
    district: str | None = None
    since: datetime | None = None  # created at or after


@dataclass(frozen=True, slots=True)
class Places:
    """Where an order is picked up and delivered; either may be unknown."""

    pickup: Point | None = None
    dropoff: Point | None = None

    def cleaned(self) -> "Places":
        return Places(clean_point(self.pickup), clean_point(self.dropoff))


NOWHERE = Places()


@dataclass(frozen=True, slots=True)
class ShopPage:
    items: tuple[OrderView, ...]
    last_id: int | None  # where the next page starts after; None: this was the last


async def post_order(
    uow: UnitOfWork,
    actor_id: int,
    chat_id: int,
    district_id: int,
    description: str,
    locale: str | None = None,
    *,
    source: str | None = None,
    places: Places = NOWHERE,
) -> OrderView:
    """Post an order and assign it at once to a free courier, or queue it; the chat hears
    which (OrderPosted). A `source` (the form it was typed in) posts once: again, it is
    refused with ALREADY_POSTED."""
    description = clean_description(description)
    places = places.cleaned()
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        district = await uow.districts.get(district_id)
        if district is None:
            raise NotFound(ErrorCode.DISTRICT_NOT_FOUND, district=str(district_id))
        chat = Chat(actor_id, chat_id, locale)
        view = await _post(uow, district.id, description, chat, source, places)
        await uow.commit()
    return view


async def post_order_text(
    uow: UnitOfWork,
    actor_id: int,
    chat_id: int,
    text: str,
    locale: str | None = None,
    *,
    source: str | None = None,
) -> OrderView:
    """`<district> <description>`: the longest district name that starts the text wins. The
    chat hears what became of it, as with `post_order`, and a `source` posts once."""
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        district, rest = await match_district_prefix(uow, text)
        chat = Chat(actor_id, chat_id, locale)
        view = await _post(uow, district.id, clean_description(rest), chat, source)
        await uow.commit()
    return view


async def post_order_for_shop(
    uow: UnitOfWork,
    shop: Shop,
    district_name: str,
    description: str,
    *,
    queue: bool,
    source: str | None = None,
    places: Places = NOWHERE,
) -> OrderView:
    """An order from a shop's software: assigned at once, or queued if the shop allows it;
    otherwise nothing is stored (NO_COURIER_FREE). A `source` (an idempotency key) posts
    once."""
    description = clean_description(description)
    places = places.cleaned()
    async with uow.write():
        district = await district_named(uow, district_name)
        view = await _post(uow, district.id, description, shop, source, places)
        if view.status is OrderStatus.QUEUED and not queue:
            raise Conflict(ErrorCode.NO_COURIER_FREE, district=district.name)
        await uow.commit()
    return view


async def order_form(uow: UnitOfWork, actor_id: int) -> list[DistrictView]:
    """The districts a dispatcher can post an order to, for a step-by-step form."""
    async with uow.read():
        await require_dispatcher(uow, actor_id)
        return await all_districts(uow)


async def complete_order(uow: UnitOfWork, actor: Actor, order_key: OrderKey) -> CompletionResult:
    """The assigned courier marks the order delivered and gets the next one waiting.

    A shop may mark any order in progress delivered; the courier's Complete button goes.
    A courier's second tap is a harmless no-op; a shop's second call is a Conflict.
    """
    async with uow.write():
        order = await _get(uow, order_key, actor)
        courier = await _who_completes(uow, actor, order)
        if courier is None:
            return await _already_completed(uow, order)
        now = clock.utcnow()
        await uow.lock_districts(of_couriers=[courier.id])
        if await uow.orders.complete(order.id, courier.id, now) is None:
            # A second tap that raced the first one is still just a second tap.
            order = await _get(uow, order.id)
            if isinstance(actor, Shop):
                _require_active(order)  # the same answer as to a call that came later
            elif order.status is OrderStatus.COMPLETED:
                return await _already_completed(uow, order)
            raise Conflict(ErrorCode.ORDER_CHANGED, order_id=order.id)
        await uow.couriers.release(courier.id, now)
        assert order.assigned_at is not None
        seconds = int((now - order.assigned_at).total_seconds())
        notices.to_dispatch_chat(
            uow,
            order,
            DispatchCompleted(
                order_id=order.id, courier_id=courier.id, courier_name=courier.name, seconds=seconds
            ),
        )
        if isinstance(actor, Shop):
            notices.order_withdrawn(uow, order, courier, WithdrawReason.COMPLETED)
        await dispatching.serve_courier(uow, courier.id, now)
        result = CompletionResult(await load_order_view(uow, order), already_completed=False)
        await uow.commit()
    return result


async def _who_completes(uow: UnitOfWork, actor: Actor, order: Order) -> Courier | None:
    """The courier whose order is being completed; None when their own order already is."""
    if isinstance(actor, Shop):
        _require_active(order)
        if order.status is not OrderStatus.ASSIGNED or order.courier_id is None:
            raise Conflict(ErrorCode.ORDER_NOT_IN_PROGRESS, order_id=order.id)
        courier = await uow.couriers.get(order.courier_id)
        assert courier is not None
        return courier
    courier = await require_courier(uow, actor)
    if order.courier_id != courier.id:
        raise Forbidden(ErrorCode.NOT_YOUR_ORDER, order_id=order.id)
    if order.status is OrderStatus.COMPLETED:
        return None
    if order.status is OrderStatus.OFFERED:
        raise Conflict(ErrorCode.ORDER_NOT_IN_PROGRESS, order_id=order.id)
    if order.status is not OrderStatus.ASSIGNED:
        raise Conflict(ErrorCode.ORDER_CANCELLED, order_id=order.id)
    return courier


async def cancel_order(uow: UnitOfWork, actor: Actor, order_key: OrderKey) -> OrderView:
    """A dispatcher (or the shop that posted it) cancels a queued, offered or assigned order;
    its courier is told and freed."""
    async with uow.write():
        await require_dispatcher(uow, actor)
        order = await _get(uow, order_key, actor)
        _require_active(order)
        courier_id = order.courier_id
        await uow.lock_districts([order.district_id], of_couriers=[courier_id])
        now = clock.utcnow()
        if await uow.orders.cancel(order, now) is None:
            _require_active(await _get(uow, order.id))
            raise Conflict(ErrorCode.ORDER_CHANGED, order_id=order.id)
        if courier_id is not None:
            courier = await uow.couriers.get(courier_id)
            assert courier is not None
            await dispatching.close_offer(uow, order.id, now)
            notices.order_withdrawn(uow, order, courier, WithdrawReason.CANCELLED)
            await uow.couriers.release(courier_id, now)
            await dispatching.serve_courier(uow, courier_id, now)
        view = await load_order_view(uow, order)
        await uow.commit()
    return view


async def reassign_order(
    uow: UnitOfWork, actor_id: int, order_id: int, courier_id: int | None
) -> OrderView:
    """Give an order to the courier named, or take it from its courier back to the queue.

    A waiting order can go to a named courier too, even to the one it was taken from.
    """
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        order = await _get(uow, order_id)
        _require_active(order)
        previous_id = order.courier_id
        if courier_id is None and previous_id is None:
            raise Conflict(ErrorCode.ORDER_NOT_IN_PROGRESS, order_id=order_id)
        if courier_id is not None and courier_id == previous_id:
            raise Conflict(ErrorCode.ALREADY_ASSIGNED_TO, order_id=order_id, courier_id=courier_id)
        if courier_id is not None and await uow.couriers.get(courier_id) is None:
            raise NotFound(ErrorCode.COURIER_NOT_FOUND, courier_id=courier_id)
        await uow.lock_districts([order.district_id], of_couriers=[previous_id, courier_id])
        order = await _unchanged(uow, order)
        now = clock.utcnow()
        if previous_id is not None:
            previous = await uow.couriers.get(previous_id)
            assert previous is not None
            if courier_id is None:
                await dispatching.take_back(uow, order, previous, now, WithdrawReason.RETURNED)
            else:
                await dispatching.withdraw(uow, order, previous, now, WithdrawReason.REASSIGNED)
        if courier_id is not None:
            courier = await _claim_named(uow, courier_id)
            given = await dispatching.given_to(uow, order_id, courier, now)
            await dispatching.hand_over(uow, order_id, given, now, tell_dispatcher=True)
        if previous_id is not None:
            await dispatching.serve_courier(uow, previous_id, now)
        view = await load_order_view(uow, order)
        await uow.commit()
    return view


async def order_status(uow: UnitOfWork, actor: Actor, order_key: OrderKey) -> OrderView:
    """Dispatchers see any order, a shop its own; a courier the orders they carry or carried."""
    async with uow.read():
        courier = None if isinstance(actor, Shop) else await uow.couriers.by_telegram_id(actor)
        if courier is None:
            await require_dispatcher(uow, actor)
        order = await _get(uow, order_key, actor)
        if courier is not None and order.courier_id != courier.id:
            await require_dispatcher(uow, actor)
        return await load_order_view(uow, order)


async def shop_orders(
    uow: UnitOfWork, shop: Shop, wanted: OrderFilter, after_id: int, limit: int
) -> ShopPage:
    """The shop's orders in the order they came, after the order `after_id`, as filtered."""
    async with uow.read():
        district_id = None
        if wanted.district is not None:
            found = await uow.districts.by_keys([name_key(wanted.district)])
            if not found:
                return ShopPage((), None)  # no such district: none of its orders
            district_id = found[0].id
        rows = await uow.orders.shop_page(
            shop.id, wanted.status, district_id, wanted.since, after_id, limit + 1
        )
        views = tuple(await order_views(uow, rows[:limit]))
        return ShopPage(views, rows[limit - 1].id if len(rows) > limit else None)


async def active_orders(uow: UnitOfWork, actor: Actor, offset: int, limit: int) -> Page[OrderView]:
    """Orders in progress, then queued ones, for dispatchers."""
    async with uow.read():
        await require_dispatcher(uow, actor)
        offset, limit = page_window(offset, limit)
        orders = await uow.orders.active_page(offset, limit)
        total = await uow.orders.count_active()
        return Page(tuple(await order_views(uow, orders)), offset, total)


async def sweep_queue(uow: UnitOfWork) -> int:
    """The safety net: assign whatever queued order a free courier can take. For the scheduler.

    One short transaction per district with orders waiting, so the sweep never holds the
    write lock for long however large the queue.
    """
    async with uow.read():
        districts = await uow.orders.queued_districts()
    assigned = 0
    for district_id in districts:
        async with uow.write():
            await uow.lock_districts([district_id])
            assigned += await dispatching.sweep_district(uow, district_id, clock.utcnow())
            await uow.commit()
    return assigned


async def remind_overdue(uow: UnitOfWork, after: timedelta, limit: int = 200) -> int:
    """Remind, once, the courier and the dispatch chat of each order in progress for longer
    than `after`; how many were reminded. For the scheduler; safe to run anywhere at once."""
    now = clock.utcnow()
    reminded = 0
    async with uow.write():
        overdue = await uow.orders.overdue(now - after, limit)
        await uow.lock_districts(order.district_id for order in overdue)  # as dispatching does
        for order in overdue:
            if not await uow.orders.mark_reminded(order.id, now):
                continue
            courier = await uow.couriers.get(order.courier_id or 0)
            assert courier is not None
            assert order.assigned_at is not None
            minutes = int((now - order.assigned_at).total_seconds() // 60)
            notices.to_courier(uow, courier, OrderOverdue(order_id=order.id, minutes=minutes))
            notices.to_dispatch_chat(
                uow,
                order,
                DispatchOverdue(
                    order_id=order.id,
                    courier_id=courier.id,
                    courier_name=courier.name,
                    minutes=minutes,
                ),
            )
            reminded += 1
        await uow.commit()
    return reminded


@dataclass(frozen=True, slots=True)
class Chat:
    """Where an order was posted in Telegram: whose it is, and where to tell them."""

    dispatcher_id: int
    chat_id: int
    locale: str | None


async def _post(
    uow: UnitOfWork,
    district_id: int,
    description: str,
    chat: Chat | Shop,
    source: str | None = None,
    places: Places = NOWHERE,
) -> OrderView:
    """Record an order (from a chat, or a shop over HTTP) and give it to a free courier if
    any; a chat hears which. An order from a `source` that posted one already is refused."""
    if source is not None and (posted := await uow.orders.by_source(source)) is not None:
        raise Conflict(ErrorCode.ALREADY_POSTED, order_id=posted.id, sid=str(posted.sid))
    now = clock.utcnow()
    await uow.lock_districts([district_id])
    if isinstance(chat, Shop):
        order = await uow.orders.add(
            district_id,
            description,
            OrderSource.API,
            None,
            None,
            None,
            now,
            source,
            chat.id,
            pickup=places.pickup,
            dropoff=places.dropoff,
        )
    else:
        order = await uow.orders.add(
            district_id,
            description,
            OrderSource.BOT,
            chat.dispatcher_id,
            chat.chat_id,
            chat.locale,
            now,
            source,
            pickup=places.pickup,
            dropoff=places.dropoff,
        )
    given = await dispatching.assign_free_courier(uow, order, now, tell_dispatcher=False)
    view = await load_order_view(uow, order)
    if isinstance(chat, Chat):
        notices.order_posted(uow, order, view, given.distance_m if given else None)
    return view


async def _get(uow: UnitOfWork, key: OrderKey, actor: Actor | None = None) -> Order:
    """An order by its number (in Telegram) or its public id (over HTTP). A shop finds only
    the orders it posted: another's is as missing as one that never was."""
    order = await (uow.orders.by_sid(key) if isinstance(key, UUID) else uow.orders.get(key))
    if order is None or (isinstance(actor, Shop) and order.shop_id != actor.id):
        raise NotFound(ErrorCode.ORDER_NOT_FOUND, order_id=str(key))
    return order


async def _already_completed(uow: UnitOfWork, order: Order) -> CompletionResult:
    return CompletionResult(await load_order_view(uow, order), already_completed=True)


def _require_active(order: Order) -> None:
    if order.status is OrderStatus.COMPLETED:
        raise Conflict(ErrorCode.ORDER_COMPLETED, order_id=order.id)
    if order.status is OrderStatus.CANCELLED:
        raise Conflict(ErrorCode.ORDER_CANCELLED, order_id=order.id)


async def _unchanged(uow: UnitOfWork, order: Order) -> Order:
    """The order read again under the locks; if it moved meanwhile, the dispatcher looks again."""
    seen = (order.status, order.courier_id)
    now_is = await _get(uow, order.id)  # the same object, refreshed
    if (now_is.status, now_is.courier_id) != seen:
        raise Conflict(ErrorCode.ORDER_CHANGED, order_id=order.id)
    return now_is


async def _claim_named(uow: UnitOfWork, courier_id: int) -> Courier:
    """The courier a dispatcher named, now busy; they must be active, online and free."""
    claimed = await uow.couriers.claim(courier_id)
    if claimed is None:
        courier = await uow.couriers.get(courier_id)
        assert courier is not None  # checked before the locks
        raise Conflict(ErrorCode.COURIER_UNAVAILABLE, courier_id=courier_id, name=courier.name)
    return claimed
