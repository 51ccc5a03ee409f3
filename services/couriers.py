"""Courier use cases: register, approve or reject, shifts, districts, lists and cards."""

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from db.models import Courier, CourierStatus
from db.uow import UnitOfWork
from services import clock, dispatching, notifications
from services.access import require_courier, require_dispatcher
from services.districts import list_districts
from services.errors import Conflict, InvalidInput, NotFound
from services.snapshots import courier_views, load_courier_view, load_order_view
from services.statistics import mean_duration
from services.validation import clean_name
from services.views import CourierCard, CourierView, DistrictView, OrderView, Page


async def register_courier(
    uow: UnitOfWork,
    telegram_id: int,
    name: str,
    district_ids: Sequence[int],
    *,
    approval_required: bool,
    invite_token: str | None = None,
    locale: str | None = None,
) -> CourierView:
    """Join as a courier. Pending approval unless approval is off or an invite is spent."""
    name = clean_name(name, "courier_name")
    district_ids = await _existing_districts(uow, district_ids)
    if await uow.couriers.by_telegram_id(telegram_id):
        raise Conflict("already_registered")
    now = clock.utcnow()
    active = not approval_required or invite_token is not None
    status = CourierStatus.ACTIVE if active else CourierStatus.PENDING
    await uow.lock_districts(district_ids)
    courier = await uow.couriers.add(telegram_id, name, status, locale, now)
    await uow.couriers.set_districts(courier.id, district_ids)
    if invite_token is not None and not await uow.invites.use(invite_token, courier.id, now):
        raise NotFound("invite_invalid")
    if active:
        await dispatching.serve_courier(uow, courier.id, now)
    view = await load_courier_view(uow, await _get(uow, courier.id))
    if not active:
        await notifications.registration_request(uow, courier, list(view.districts))
    await uow.commit()
    return view


async def decide_registration(
    uow: UnitOfWork, actor_id: int, courier_id: int, *, approve: bool
) -> CourierView:
    """A dispatcher approves (the courier starts at once) or rejects (blocked) a pending courier."""
    await require_dispatcher(uow, actor_id)
    courier = await _get(uow, courier_id)
    await uow.lock_districts(await uow.couriers.district_ids(courier_id))
    status = CourierStatus.ACTIVE if approve else CourierStatus.BLOCKED
    if not await uow.couriers.set_status(courier_id, status, expected=CourierStatus.PENDING):
        raise Conflict("not_pending", courier_id=courier_id, status=courier.status)
    courier = await _get(uow, courier_id)
    notifications.registration_decided(uow, courier, approve)
    if approve:
        await dispatching.serve_courier(uow, courier_id, clock.utcnow())
    view = await load_courier_view(uow, courier)
    await uow.commit()
    return view


async def set_online(
    uow: UnitOfWork, telegram_id: int, online: bool, timezone: ZoneInfo
) -> CourierCard:
    """Start or end a shift. Coming online free takes the oldest waiting order at once."""
    courier = await require_courier(uow, telegram_id)
    if courier.status != CourierStatus.ACTIVE:
        raise Conflict(f"courier_{courier.status}")
    if courier.online != online:
        now = clock.utcnow()
        await uow.lock_districts(await uow.couriers.district_ids(courier.id))
        await uow.couriers.set_online(courier.id, online, now)
        if online:
            await dispatching.serve_courier(uow, courier.id, now)
    card = await _card(uow, courier.id, timezone)
    await uow.commit()
    return card


async def set_districts(
    uow: UnitOfWork, telegram_id: int, district_ids: Sequence[int]
) -> CourierView:
    """Change my districts; a free courier is served from the new ones at once."""
    courier = await require_courier(uow, telegram_id)
    if courier.status == CourierStatus.BLOCKED:
        raise Conflict("courier_blocked")
    district_ids = await _existing_districts(uow, district_ids)
    old = await uow.couriers.district_ids(courier.id)
    await uow.lock_districts([*old, *district_ids])
    await uow.couriers.set_districts(courier.id, district_ids)
    await dispatching.serve_courier(uow, courier.id, clock.utcnow())
    view = await load_courier_view(uow, await _get(uow, courier.id))
    await uow.commit()
    return view


async def district_form(uow: UnitOfWork, telegram_id: int) -> tuple[list[DistrictView], list[int]]:
    """Every district, and the ids of mine, for changing my districts."""
    courier = await require_courier(uow, telegram_id)
    if courier.status == CourierStatus.BLOCKED:
        raise Conflict("courier_blocked")
    return await list_districts(uow), await uow.couriers.district_ids(courier.id)


async def list_couriers(
    uow: UnitOfWork, actor_id: int, offset: int, limit: int
) -> Page[CourierView]:
    await require_dispatcher(uow, actor_id)
    offset = max(offset, 0)
    couriers = await uow.couriers.page(offset, limit)
    total = await uow.couriers.count()
    return Page(tuple(await courier_views(uow, couriers)), offset, total)


async def courier_card(
    uow: UnitOfWork, actor_id: int, courier_id: int, timezone: ZoneInfo
) -> CourierCard:
    """Dispatchers see any card; a courier sees their own."""
    courier = await uow.couriers.by_telegram_id(actor_id)
    if courier is None or courier.id != courier_id:
        await require_dispatcher(uow, actor_id)
    await _get(uow, courier_id)
    return await _card(uow, courier_id, timezone)


async def my_card(uow: UnitOfWork, telegram_id: int, timezone: ZoneInfo) -> CourierCard:
    courier = await require_courier(uow, telegram_id)
    return await _card(uow, courier.id, timezone)


async def _card(uow: UnitOfWork, courier_id: int, timezone: ZoneInfo) -> CourierCard:
    """Averages over completed orders; None (no data) rather than 0 when there are none."""
    courier = await _get(uow, courier_id)
    active = await uow.orders.in_progress_for(courier_id)
    active_view: OrderView | None = await load_order_view(uow, active.id) if active else None
    times = await uow.orders.completion_times(courier_id)
    total = len(times)
    days = {done.astimezone(timezone).date() for _, done in times}
    return CourierCard(
        courier=await load_courier_view(uow, courier),
        active_order=active_view,
        total_completed=total,
        average_delivery=mean_duration([done - start for start, done in times]),
        average_per_day=total / len(days) if days else None,
    )


async def _get(uow: UnitOfWork, courier_id: int) -> Courier:
    courier = await uow.couriers.get(courier_id)
    if courier is None:
        raise NotFound("courier_not_found", courier_id=courier_id)
    return courier


async def _existing_districts(uow: UnitOfWork, district_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(district_ids))
    if not wanted:
        raise InvalidInput("no_districts")
    found = [d.id for d in await uow.districts.by_ids(wanted)]
    if len(found) != len(wanted):
        raise NotFound("district_not_found", district=", ".join(map(str, set(wanted) - set(found))))
    return sorted(found)
