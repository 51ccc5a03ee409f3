"""Everything the bot says about orders, couriers and statistics, in the user's language.

Every value a user typed (names, districts, descriptions) is escaped for HTML here.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from services import clock
from services.read_models import (
    Acceptance,
    CourierCard,
    CourierStatus,
    CourierView,
    DistrictView,
    OrderSource,
    OrderStatus,
    OrderView,
    Page,
    Point,
    PositionView,
    StaffRole,
    StaffView,
    TodayStats,
)

MESSAGE_LIMIT = 4096
PREVIEW = 80
# District lists are capped so that a courier of many districts still fits one message.
NAMES_LIMIT = 300


def quote(text: str) -> str:
    return escape(text, quote=False)


def preview(text: str) -> str:
    """A description cut to one short line, for lists."""
    line = " ".join(text.split())
    return quote(line if len(line) <= PREVIEW else line[: PREVIEW - 1] + "…")


def names(items: Sequence[str]) -> str:
    """A comma-separated, escaped list, cut short (…) past a few hundred characters."""
    joined = ", ".join(items)
    return quote(joined if len(joined) <= NAMES_LIMIT else joined[: NAMES_LIMIT - 1] + "…")


def duration(value: timedelta) -> str:
    minutes, seconds = divmod(int(value.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    if minutes:
        return _("{minutes} min").format(minutes=minutes)
    return _("{seconds} s").format(seconds=seconds)


def moment(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%d.%m %H:%M") if value else "—"


def no_data() -> str:
    return _("no data yet")


def new_order(order_id: int, district: str, description: str) -> str:
    """An order as its courier's message shows it."""
    return _("📦 New order <b>#{id}</b> · {district}\n{description}").format(
        id=order_id, district=quote(district), description=quote(description)
    )


def offer_deadline(expires_at: datetime, zone: ZoneInfo) -> str:
    """By when to answer an offer, and how long that leaves as this is written."""
    return _("⏳ Accept or decline by {time} ({seconds} s).").format(
        time=expires_at.astimezone(zone).strftime("%H:%M:%S"), seconds=_seconds_left(expires_at)
    )


def _seconds_left(until: datetime) -> int:
    return max(0, round((until - clock.utcnow()).total_seconds()))


def order_state(order: OrderView) -> str:
    courier = quote(order.courier_name or "")
    match order.status:
        case OrderStatus.QUEUED:
            return _("queued, place {place}").format(place=order.queue_position)
        case OrderStatus.OFFERED:
            assert order.offer_expires_at is not None
            return _("offered to {name} (#{id}), {seconds} s left").format(
                name=courier, id=order.courier_id, seconds=_seconds_left(order.offer_expires_at)
            )
        case OrderStatus.ASSIGNED:
            return _("in progress with {name} (#{id})").format(name=courier, id=order.courier_id)
        case OrderStatus.COMPLETED:
            return _("delivered by {name} (#{id})").format(name=courier, id=order.courier_id)
        case OrderStatus.CANCELLED:
            return _("cancelled")


def order_line(order: OrderView) -> str:
    head = f"<b>#{order.id}</b> · {quote(order.district)} · {order_state(order)}"
    return f"{head}{_via(order)}\n{preview(order.description)}"


def _via(order: OrderView) -> str:
    """Marks an order a shop posted over HTTP."""
    return " · " + _("via the API") if order.source is OrderSource.API else ""


def order_card(order: OrderView, zone: ZoneInfo) -> str:
    lines = [
        _("<b>Order #{id}</b> · {district}").format(id=order.id, district=quote(order.district))
        + _via(order),
        quote(order.description),
        "",
        _("Status: {state}").format(state=order_state(order)),
        _("Created: {at}").format(at=moment(order.created_at, zone)),
    ]
    if order.assigned_at:
        lines.append(_("Assigned: {at}").format(at=moment(order.assigned_at, zone)))
    if order.completed_at and order.delivery_time is not None:
        lines.append(
            _("Delivered: {at}, in {time}").format(
                at=moment(order.completed_at, zone), time=duration(order.delivery_time)
            )
        )
    if order.cancelled_at:
        lines.append(_("Cancelled: {at}").format(at=moment(order.cancelled_at, zone)))
    if order.pickup:
        lines.append(_("Pickup: {where}").format(where=where(order.pickup)))
    if order.dropoff:
        lines.append(_("Drop-off: {where}").format(where=where(order.dropoff)))
    return "\n".join(lines)


def distance(metres: float) -> str:
    """A distance as people say it: 350 m, 1.2 km, 35 km."""
    if metres < 1000:
        return _("{metres} m").format(metres=round(metres / 10) * 10)
    kilometres = metres / 1000
    shown = f"{kilometres:.1f}" if kilometres < 10 else f"{kilometres:.0f}"
    return _("{kilometres} km").format(kilometres=shown)


def courier_label(name: str | None, courier_id: int | None, metres: float | None = None) -> str:
    """ "Ann (#3)", and how far from the pickup they were: "Ann (#3), 1.2 km away"."""
    label = _("{name} (#{id})").format(name=quote(name or ""), id=courier_id)
    if metres is None:
        return label
    return _("{courier}, {distance} away").format(courier=label, distance=distance(metres))


def where(point: Point | PositionView) -> str:
    """Coordinates, linked to a map; a point's address before them."""
    coordinates = f"{point.lat:.5f}, {point.lon:.5f}"
    url = f"https://www.openstreetmap.org/?mlat={point.lat:.6f}&mlon={point.lon:.6f}"
    link = f'<a href="{url}">{coordinates}</a>'
    address = getattr(point, "address", None)
    return f"{quote(address)} ({link})" if address else link


def position(value: PositionView | None) -> str:
    """Where a courier was last, how long ago, and whether it still counts."""
    if value is None:
        return _("Location: not shared")
    now = clock.utcnow()
    age = duration(max(now - value.at, timedelta(0)))
    if not value.fresh(now):
        text = _("Location: {where}, {age} ago, too old to count")
    elif value.live_until is not None:
        text = _("Location: {where}, {age} ago, live")
    else:
        text = _("Location: {where}, {age} ago")
    return text.format(where=where(value), age=age)


def posted(order: OrderView) -> str:
    return posted_to(
        order.id,
        order.district,
        order.courier_id,
        order.courier_name,
        order.queue_position,
        offered=order.status is OrderStatus.OFFERED,
    )


def posted_to(
    order_id: int,
    district: str,
    courier_id: int | None,
    name: str | None,
    place: int | None,
    *,
    offered: bool = False,
    metres: float | None = None,
) -> str:
    """Whom an order went to (or is offered to), and how far away they were, or its place in
    the queue."""
    courier = courier_label(name, courier_id, metres)
    if courier_id is not None and offered:
        return _(
            "Order <b>#{id}</b> ({district}) is offered to {courier}. "
            "I'll tell you when they accept."
        ).format(id=order_id, district=quote(district), courier=courier)
    if courier_id is not None:
        return _("Order <b>#{id}</b> ({district}) went to {courier}.").format(
            id=order_id, district=quote(district), courier=courier
        )
    return _(
        "Order <b>#{id}</b> ({district}) is queued, place {place}. "
        "It goes to the first courier who frees up."
    ).format(id=order_id, district=quote(district), place=place)


def registration_verdict(courier_id: int, name: str, approved: bool) -> str:
    verdict = _("approved") if approved else _("rejected")
    return _("Courier #{id} {name}: {verdict}.").format(
        id=courier_id, name=quote(name), verdict=verdict
    )


def courier_status(courier: CourierView) -> str:
    match courier.status:
        case CourierStatus.PENDING:
            return _("waiting for approval")
        case CourierStatus.BLOCKED:
            return _("blocked")
    if not courier.online:
        return _("offline")
    return _("busy") if courier.busy else _("free")


def courier_line(courier: CourierView) -> str:
    districts = names(courier.districts)
    return f"<b>#{courier.id}</b> {quote(courier.name)} · {courier_status(courier)} · {districts}"


def courier_card(card: CourierCard) -> str:
    courier = card.courier
    active = card.active_order
    per_day = card.average_per_day
    lines = [
        f"<b>#{courier.id} {quote(courier.name)}</b>",
        _("State: {state}").format(state=courier_status(courier)),
        _("Districts: {districts}").format(districts=names(courier.districts)),
        _("Active order: {order}").format(
            order=f"#{active.id} · {quote(active.district)} · {preview(active.description)}"
            if active
            else "—"
        ),
        *(
            [_("Offered: {order}").format(order=f"#{card.offer.id} · {order_state(card.offer)}")]
            if card.offer
            else []
        ),
        _("Average delivery time: {time}").format(
            time=duration(card.average_delivery) if card.average_delivery else no_data()
        ),
        _("Average orders per day: {count}").format(
            count=f"{per_day:.1f}" if per_day is not None else no_data()
        ),
        _("Delivered in total: {count}").format(count=card.total_completed),
        _("Offers accepted (7 days): {acceptance}").format(acceptance=acceptance(card.acceptance)),
        position(card.position),
    ]
    if courier.telegram_id is None:
        lines.append(_("Not in Telegram yet: their orders are read and completed over HTTP."))
    return "\n".join(lines)


def acceptance(figures: Acceptance | None) -> str:
    """The share of offers accepted and the median time to accept, or that there are none."""
    if figures is None:
        return no_data()
    rate = _("{percent}% of {count}").format(
        percent=round(figures.rate * 100), count=figures.offers
    )
    if figures.median_to_accept is None:
        return rate
    return _("{rate}, in {time} (median)").format(
        rate=rate, time=duration(figures.median_to_accept)
    )


def no_districts() -> str:
    return _("No districts yet. Add one: /add_district &lt;name&gt;")


def districts(items: Sequence[DistrictView]) -> list[str]:
    if not items:
        return [no_districts()]
    lines = [
        _("{name}: {couriers} couriers, {queued} waiting").format(
            name=f"<b>{quote(d.name)}</b>", couriers=d.couriers, queued=d.queued
        )
        for d in items
    ]
    return split([_("<b>Districts</b>"), *lines])


def orders_page(page: Page[OrderView]) -> str:
    if not page.items:
        return _("No orders in progress or waiting.")
    header = _("<b>Orders</b> {first}-{last} of {total}").format(**_bounds(page))
    return "\n\n".join([header, *(order_line(o) for o in page.items)])


def couriers_page(page: Page[CourierView]) -> str:
    if not page.items:
        return _("No couriers yet. Send them /invite links, or ask them to /register.")
    header = _("<b>Couriers</b> {first}-{last} of {total}").format(**_bounds(page))
    return "\n".join([header, *(courier_line(c) for c in page.items)])


def _bounds(page: Page[Any]) -> dict[str, int]:
    return {"first": page.offset + 1, "last": page.offset + len(page.items), "total": page.total}


def stats(today: TodayStats) -> list[str]:
    """The day's totals, then a line per courier; as many messages as it takes."""
    return split([*_totals(today), *_per_courier(today)])


def daily_report(today: TodayStats) -> str:
    """The day's numbers in one message: couriers past what fits are counted, not listed."""
    lines = [_("📊 <b>The day's report</b>"), *_totals(today)]
    couriers = _per_courier(today)
    for shown, line in enumerate(couriers):
        more = _("…and {count} more couriers").format(count=len(couriers) - shown)
        if len("\n".join([*lines, line, more])) > MESSAGE_LIMIT:
            return "\n".join([*lines, more])
        lines.append(line)
    return "\n".join(lines)


def _totals(today: TodayStats) -> list[str]:
    average = duration(today.average_delivery) if today.average_delivery else no_data()
    return [
        _("<b>Today, {day}</b>").format(day=today.day.strftime("%d.%m.%Y")),
        _("Posted: {count}").format(count=today.posted),
        _("Delivered: {count}").format(count=today.completed),
        _("In progress: {count}").format(count=today.in_progress),
        _("Waiting: {count}").format(count=today.queued),
        _("Offered, not accepted yet: {count}").format(count=today.offered),
        _("Average delivery time: {time}").format(time=average),
    ]


def _per_courier(today: TodayStats) -> list[str]:
    lines = []
    for courier in today.couriers:
        time = duration(courier.average_delivery) if courier.average_delivery else no_data()
        line = _("#{id} {name}: {count} delivered, {time} on average").format(
            id=courier.courier_id, name=quote(courier.name), count=courier.completed, time=time
        )
        if courier.acceptance is not None:
            line += "; " + _("offers accepted (7 days): {acceptance}").format(
                acceptance=acceptance(courier.acceptance)
            )
        lines.append(line)
    return lines


def staff(members: Sequence[StaffView]) -> list[str]:
    roles = {StaffRole.ADMIN: _("admin"), StaffRole.DISPATCHER: _("dispatcher")}
    lines = [f"<code>{m.telegram_id}</code> · {roles[m.role]}" for m in members]
    return split([_("<b>Staff</b>"), *lines])


def split(lines: Iterable[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Join lines into as few messages as fit Telegram's limit, never breaking a line."""
    messages: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            messages.append(current)
            candidate = line
        current = candidate
    return [*messages, current] if current else messages
