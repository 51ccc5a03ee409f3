"""Courier use cases: register, approve or reject, shifts, districts, blocking, lists and cards."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from db.models import Courier, CourierStatus, Order, OrderStatus
from db.uow import UnitOfWork
from services import clock, dispatching, notices, statistics
from services.access import Actor, Shop, require_courier, require_dispatcher
from services.districts import all_districts
from services.errors import Conflict, ErrorCode, InvalidInput, NotFound
from services.invites import LINK_TTL, new_token, valid_invite
from services.notices import (
    CourierBlocked,
    CourierUnblocked,
    CourierUnreachable,
    RegistrationApproved,
    RegistrationRejected,
    ShiftEnded,
    WithdrawReason,
)
from services.queries import courier_views, load_courier_view, load_order_view
from services.read_models import (
    CourierCard,
    CourierView,
    DistrictView,
    NewCourier,
    Page,
    PendingRequests,
    PositionView,
    RosterChange,
)
from services.statistics import mean_duration
from services.validation import clean_name, name_key, page_window

# A courier's number, as people in Telegram know it, or their public id, as the HTTP API does.
CourierKey = int | UUID

# /pending sends at most this many requests at once; the rest follow on the next /pending.
PENDING_BATCH = 20


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
    name = clean_name(name, ErrorCode.COURIER_NAME_LENGTH)
    async with uow.write():
        district_ids = await _existing_districts(uow, district_ids)
        if await uow.couriers.by_telegram_id(telegram_id):
            raise Conflict(ErrorCode.ALREADY_REGISTERED)
        now = clock.utcnow()
        active = not approval_required or invite_token is not None
        status = CourierStatus.ACTIVE if active else CourierStatus.PENDING
        await uow.lock_districts(district_ids)
        courier = await uow.couriers.add(telegram_id, name, status, locale, now)
        await uow.couriers.set_districts(courier.id, district_ids)
        if invite_token is not None and not await uow.invites.use(invite_token, courier.id, now):
            raise NotFound(ErrorCode.INVITE_INVALID)
        if active:
            await dispatching.serve_courier(uow, courier.id, now)
        view = await load_courier_view(uow, await _get(uow, courier.id))
        if not active:
            await notices.registration_request(uow, courier, list(view.districts))
        await uow.commit()
    return view


async def create_courier(
    uow: UnitOfWork, actor: Actor, name: str, district_names: Sequence[str]
) -> NewCourier:
    """A courier made by a shop over HTTP: active and online at once, taking orders as any
    courier, without Telegram until they open the link this returns."""
    name = clean_name(name, ErrorCode.COURIER_NAME_LENGTH)
    async with uow.write():
        await require_dispatcher(uow, actor)
        district_ids = await _districts_named(uow, district_names)
        now = clock.utcnow()
        await uow.lock_districts(district_ids)
        courier = await uow.couriers.add(None, name, CourierStatus.ACTIVE, None, now)
        await uow.couriers.set_districts(courier.id, district_ids)
        token = new_token()
        await uow.invites.add(token, None, now, now + LINK_TTL, courier_id=courier.id)
        await dispatching.serve_courier(uow, courier.id, now)
        created = NewCourier(await load_courier_view(uow, await _get(uow, courier.id)), token)
        await uow.commit()
    return created


async def reissue_link(uow: UnitOfWork, actor: Actor, courier_key: CourierKey) -> NewCourier:
    """A new Telegram link for a courier created over HTTP who has not connected yet; the
    links made for them before stop working."""
    async with uow.write():
        await require_dispatcher(uow, actor)
        courier = await _locked(uow, (await _get(uow, courier_key)).id)
        if courier.telegram_id is not None:
            raise Conflict(ErrorCode.ALREADY_LINKED)
        now, token = clock.utcnow(), new_token()
        await uow.invites.revoke_links_of(courier.id, now)
        await uow.invites.add(token, None, now, now + LINK_TTL, courier_id=courier.id)
        reissued = NewCourier(await load_courier_view(uow, courier), token)
        await uow.commit()
    return reissued


async def accept_invite(
    uow: UnitOfWork, token: str, telegram_id: int, locale: str | None
) -> CourierView | None:
    """Someone opened an invite link. A link made for a courier created over HTTP connects this
    Telegram account to them (their order in progress comes to the chat too) and returns them;
    an invite to register returns None: the registration dialog comes next."""
    async with uow.write():
        invite = await valid_invite(uow, token)
        if invite.courier_id is None:
            return None
        if await uow.couriers.by_telegram_id(telegram_id):
            raise Conflict(ErrorCode.ALREADY_REGISTERED)
        courier = await _locked(uow, invite.courier_id)
        if not await uow.couriers.link_telegram(courier.id, telegram_id, locale):
            raise Conflict(ErrorCode.ALREADY_LINKED)
        await uow.invites.use(token, courier.id, clock.utcnow())
        courier = await _get(uow, courier.id)
        if order := await uow.orders.in_progress_for(courier.id):
            district = await uow.districts.get(order.district_id)
            assert district is not None
            notices.order_assigned(uow, order, courier, district.name)
        view = await load_courier_view(uow, courier)
        await uow.commit()
    return view


async def decide_registration(
    uow: UnitOfWork, actor_id: int, courier_id: int, *, approve: bool
) -> CourierView:
    """A dispatcher approves (the courier starts at once) or rejects (blocked) a pending courier.

    Every copy of the request, in every chat, then shows the verdict instead of the buttons.
    """
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        courier = await _get(uow, courier_id)
        await uow.lock_districts(of_couriers=[courier_id])
        status = CourierStatus.ACTIVE if approve else CourierStatus.BLOCKED
        if not await uow.couriers.set_status(courier_id, status, [CourierStatus.PENDING]):
            raise Conflict(ErrorCode.NOT_PENDING, courier_id=courier_id)
        courier = await _get(uow, courier_id)
        verdict = RegistrationApproved if approve else RegistrationRejected
        notices.to_courier(uow, courier, verdict(courier_id=courier_id))
        await notices.registration_closed(uow, courier, approve)
        if approve:
            await dispatching.serve_courier(uow, courier_id, clock.utcnow())
        view = await load_courier_view(uow, courier)
        await uow.commit()
    return view


async def send_pending_requests(
    uow: UnitOfWork, actor_id: int, chat_id: int, locale: str | None
) -> PendingRequests:
    """Send this chat a copy of each waiting request, with Approve and Reject, oldest first."""
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        waiting = await uow.couriers.pending(PENDING_BATCH + 1)
        names = await uow.couriers.district_names(c.id for c in waiting)
        for courier in waiting[:PENDING_BATCH]:
            notice = notices.RegistrationRequest(
                courier_id=courier.id, name=courier.name, districts=tuple(names[courier.id])
            )
            notices.write(uow, chat_id, locale, notice)
        await uow.commit()
    return PendingRequests(sent=min(len(waiting), PENDING_BATCH), more=len(waiting) > PENDING_BATCH)


async def record_request_copy(
    uow: UnitOfWork, courier_id: int, chat_id: int, message_id: int, locale: str | None
) -> None:
    """Remember a message that shows a courier's request with its buttons, sent directly.

    Decided meanwhile? Then that message is closed at once, like every other copy.
    """
    async with uow.write():
        courier = await uow.couriers.lock(courier_id)
        if courier is None:
            return
        request = notices.RegistrationRequest(
            courier_id=courier.id, name=courier.name, districts=()
        )
        notices.write(uow, chat_id, locale, request, delivered_as=message_id)
        if courier.status is not CourierStatus.PENDING:
            approved = courier.status is CourierStatus.ACTIVE
            await notices.registration_closed(uow, courier, approved, only_chat=chat_id)
        await uow.commit()


async def set_online(
    uow: UnitOfWork, telegram_id: int, online: bool, timezone: ZoneInfo
) -> CourierCard:
    """Start or end a shift. Coming online free takes the oldest waiting order at once; going
    offline passes on an order offered and not accepted yet (one in progress stays theirs)."""
    async with uow.write():
        courier = await require_courier(uow, telegram_id)
        _require_approved(courier)
        if courier.online != online:
            now = clock.utcnow()
            courier = await _locked(uow, courier.id)
            await uow.couriers.set_online(courier.id, online, now)
            if online:
                await dispatching.serve_courier(uow, courier.id, now)
            elif (
                order := await uow.orders.held_by(courier.id)
            ) and order.status is OrderStatus.OFFERED:
                await dispatching.take_back(uow, order, courier, now, WithdrawReason.RETURNED)
        card = await _card(uow, courier.id, timezone)
        await uow.commit()
    return card


async def set_districts(
    uow: UnitOfWork, telegram_id: int, district_ids: Sequence[int]
) -> CourierView:
    """Change my districts; a free courier is served from the new ones at once."""
    async with uow.write():
        courier = await require_courier(uow, telegram_id)
        if courier.status is CourierStatus.BLOCKED:
            raise Conflict(ErrorCode.COURIER_BLOCKED)
        district_ids = await _existing_districts(uow, district_ids)
        await uow.lock_districts(district_ids, of_couriers=[courier.id])
        await uow.couriers.set_districts(courier.id, district_ids)
        await dispatching.serve_courier(uow, courier.id, clock.utcnow())
        view = await load_courier_view(uow, await _get(uow, courier.id))
        await uow.commit()
    return view


async def end_shift(uow: UnitOfWork, actor_id: int, courier_id: int) -> RosterChange:
    """A dispatcher takes a courier off shift: their order goes back to the queue."""
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        courier = await _locked(uow, courier_id)
        now = clock.utcnow()
        if courier.online:
            await uow.couriers.set_online(courier_id, False, now)
            notices.to_courier(uow, courier, ShiftEnded(courier_id=courier_id))
        returned = await _return_order(uow, courier, now)
        change = RosterChange(await load_courier_view(uow, await _get(uow, courier_id)), returned)
        await uow.commit()
    return change


async def block_courier(uow: UnitOfWork, actor_id: int, courier_id: int) -> RosterChange:
    """No more orders for this courier: off shift, order back to the queue, request closed."""
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        courier = await _locked(uow, courier_id)
        was = courier.status
        blockable = [CourierStatus.ACTIVE, CourierStatus.PENDING]
        if not await uow.couriers.set_status(courier_id, CourierStatus.BLOCKED, blockable):
            raise Conflict(ErrorCode.ALREADY_BLOCKED, courier_id=courier_id, name=courier.name)
        now = clock.utcnow()
        await uow.couriers.set_online(courier_id, False, now)
        returned = await _return_order(uow, courier, now)
        notices.to_courier(uow, courier, CourierBlocked(courier_id=courier_id))
        if was is CourierStatus.PENDING:
            await notices.registration_closed(uow, courier, approved=False)
        change = RosterChange(await load_courier_view(uow, await _get(uow, courier_id)), returned)
        await uow.commit()
    return change


async def unblock_courier(uow: UnitOfWork, actor_id: int, courier_id: int) -> RosterChange:
    """A blocked courier is active again, off shift until they start one with /online."""
    async with uow.write():
        await require_dispatcher(uow, actor_id)
        courier = await _locked(uow, courier_id)
        await uow.couriers.set_online(courier_id, False, clock.utcnow())
        changed = await uow.couriers.set_status(
            courier_id, CourierStatus.ACTIVE, [CourierStatus.BLOCKED]
        )
        if not changed:
            raise Conflict(ErrorCode.COURIER_NOT_BLOCKED, courier_id=courier_id, name=courier.name)
        notices.to_courier(uow, courier, CourierUnblocked(courier_id=courier_id))
        change = RosterChange(await load_courier_view(uow, await _get(uow, courier_id)), None)
        await uow.commit()
    return change


async def unreachable(
    uow: UnitOfWork, delivery_id: int, owner: str, telegram_id: int, order_id: int, error: str
) -> None:
    """Telegram refused a courier's order message (they blocked the bot): the row fails, the
    courier's shift ends, the order goes to the next courier, and its dispatch chat hears who
    could not be reached. For the outbox sender, which holds the row's lease as `owner`."""
    async with uow.write():
        await uow.outbox.mark_failed([(delivery_id, error)], owner)
        found = await uow.couriers.by_telegram_id(telegram_id)
        if found is not None:
            courier = await _locked(uow, found.id)
            order = await uow.orders.held_by(courier.id)
            if order is not None and order.id == order_id:  # still theirs, under the locks
                now = clock.utcnow()
                await uow.couriers.set_online(courier.id, False, now)
                notices.to_dispatch_chat(
                    uow,
                    order,
                    CourierUnreachable(
                        order_id=order.id, courier_id=courier.id, courier_name=courier.name
                    ),
                )
                await _return_order(uow, courier, now)
        await uow.commit()


async def district_form(uow: UnitOfWork, telegram_id: int) -> tuple[list[DistrictView], list[int]]:
    """Every district, and the ids of mine, for changing my districts."""
    async with uow.read():
        courier = await require_courier(uow, telegram_id)
        if courier.status is CourierStatus.BLOCKED:
            raise Conflict(ErrorCode.COURIER_BLOCKED)
        return await all_districts(uow), await uow.couriers.district_ids(courier.id)


async def list_couriers(
    uow: UnitOfWork, actor: Actor, offset: int, limit: int
) -> Page[CourierView]:
    async with uow.read():
        await require_dispatcher(uow, actor)
        offset, limit = page_window(offset, limit)
        couriers = await uow.couriers.page(offset, limit)
        total = await uow.couriers.count()
        return Page(tuple(await courier_views(uow, couriers)), offset, total)


async def courier_card(
    uow: UnitOfWork, actor: Actor, courier_key: CourierKey, timezone: ZoneInfo
) -> CourierCard:
    """Dispatchers and shops see any card; a courier sees their own. A shop sees the order
    in progress only when it is the shop's own."""
    async with uow.read():
        mine = None if isinstance(actor, Shop) else await uow.couriers.by_telegram_id(actor)
        if mine is None or courier_key not in (mine.id, mine.sid):
            await require_dispatcher(uow, actor)
        shop = actor if isinstance(actor, Shop) else None
        return await _card(uow, (await _get(uow, courier_key)).id, timezone, shop)


async def my_card(uow: UnitOfWork, telegram_id: int, timezone: ZoneInfo) -> CourierCard:
    async with uow.read():
        courier = await require_courier(uow, telegram_id)
        return await _card(uow, courier.id, timezone)


async def _card(
    uow: UnitOfWork, courier_id: int, timezone: ZoneInfo, shop: Shop | None = None
) -> CourierCard:
    """Averages over completed orders; None (no data) rather than 0 when there are none."""
    courier = await _get(uow, courier_id)
    held = await uow.orders.held_by(courier_id)
    if held is not None and shop is not None and held.shop_id != shop.id:
        held = None  # another's order: not this shop's business
    active = held if held is not None and held.status is OrderStatus.ASSIGNED else None
    offer = held if held is not None and held.status is OrderStatus.OFFERED else None
    times = await uow.orders.completion_times(courier_id)
    days = {done.astimezone(timezone).date() for _, done in times}
    return CourierCard(
        courier=await load_courier_view(uow, courier),
        active_order=await load_order_view(uow, active) if active else None,
        total_completed=len(times),
        average_delivery=mean_duration([done - start for start, done in times]),
        average_per_day=len(times) / len(days) if days else None,
        acceptance=(await statistics.acceptance(uow, [courier_id])).get(courier_id),
        offer=await load_order_view(uow, offer) if offer else None,
        position=await _position(uow, courier, held, shop),
    )


async def _position(
    uow: UnitOfWork, courier: Courier, held: Order | None, shop: Shop | None
) -> PositionView | None:
    """Where the courier is, while on shift; to a shop, only while they carry (or are
    offered) the shop's own order: where a courier goes is no other shop's business."""
    if not courier.online or courier.status is not CourierStatus.ACTIVE:
        return None
    if shop is not None and held is None:
        return None
    row = await uow.positions.get(courier.id)
    if row is None:
        return None
    return PositionView(row.lat, row.lon, row.at, row.fresh_until, row.live_until)


async def _pass_on_offer(uow: UnitOfWork, courier: Courier, now: datetime) -> None:
    """An order offered to the courier, not accepted, goes to the next courier."""
    order = await uow.orders.held_by(courier.id)
    if order is not None and order.status is OrderStatus.OFFERED:
        await dispatching.take_back(uow, order, courier, now, WithdrawReason.RETURNED)


async def _return_order(uow: UnitOfWork, courier: Courier, now: datetime) -> int | None:
    """The courier's order in progress or offered, if any, goes back to the queue; its id."""
    order = await uow.orders.held_by(courier.id)
    if order is None:
        return None
    await dispatching.take_back(uow, order, courier, now, WithdrawReason.RETURNED)
    return order.id


def _require_approved(courier: Courier) -> None:
    if courier.status is CourierStatus.PENDING:
        raise Conflict(ErrorCode.COURIER_PENDING)
    if courier.status is CourierStatus.BLOCKED:
        raise Conflict(ErrorCode.COURIER_BLOCKED)


async def _get(uow: UnitOfWork, key: CourierKey) -> Courier:
    """A courier by their number (in Telegram) or their public id (over HTTP)."""
    courier = await (uow.couriers.by_sid(key) if isinstance(key, UUID) else uow.couriers.get(key))
    if courier is None:
        raise NotFound(ErrorCode.COURIER_NOT_FOUND, courier_id=str(key))
    return courier


async def _locked(uow: UnitOfWork, courier_id: int) -> Courier:
    """The courier, row-locked for this transaction, once the districts of theirs and of their
    order in progress are locked: districts first, as every dispatching transaction does."""
    await _get(uow, courier_id)
    order = await uow.orders.held_by(courier_id)
    await uow.lock_districts([order.district_id] if order else [], of_couriers=[courier_id])
    courier = await uow.couriers.lock(courier_id)
    assert courier is not None  # couriers are never deleted
    return courier


async def _districts_named(uow: UnitOfWork, names: Sequence[str]) -> list[int]:
    """The ids of the districts of these names; every name must be known."""
    keys = {name_key(name): name for name in names}
    if not keys:
        raise InvalidInput(ErrorCode.NO_DISTRICTS)
    found = await uow.districts.by_keys(list(keys))
    missing = [name for key, name in keys.items() if key not in {d.name_key for d in found}]
    if missing:
        raise NotFound(ErrorCode.DISTRICT_NOT_FOUND, district=", ".join(missing))
    return sorted(d.id for d in found)


async def _existing_districts(uow: UnitOfWork, district_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(district_ids))
    if not wanted:
        raise InvalidInput(ErrorCode.NO_DISTRICTS)
    found = sorted(await uow.districts.by_ids(wanted))
    if len(found) != len(wanted):
        missing = ", ".join(map(str, sorted(set(wanted) - set(found))))
        raise NotFound(ErrorCode.DISTRICT_NOT_FOUND, district=missing)
    return found
