"""Notices: what someone must be told about a change, written to the outbox in its transaction.

Nothing here sends anything. A service writes a notice in the same transaction as the
change it reports, so a change never commits without its notices, nor a notice without its
change; the bot's sender renders and delivers the outbox afterwards. Each kind of notice is a
frozen model: its `kind` goes into the outbox's `notice` column, its fields into the payload.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from db.models import Courier, Order
from db.uow import UnitOfWork
from services import clock
from services.read_models import OrderStatus, OrderView, TodayStats


class WithdrawReason(StrEnum):
    CANCELLED = "cancelled"
    REASSIGNED = "reassigned"
    RETURNED = "returned"
    COMPLETED = "completed"  # marked delivered over HTTP


class _Notice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# To a courier.


class OrderAssigned(_Notice):
    """The order, with the Complete button."""

    kind: Literal["order_assigned"] = "order_assigned"
    order_id: int
    district: str
    description: str


class OrderOffered(_Notice):
    """The order, with Accept and Decline, and by when to answer."""

    kind: Literal["order_offered"] = "order_offered"
    order_id: int
    district: str
    description: str
    expires_at: datetime


class PlaceRole(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


class OrderPlace(_Notice):
    """Where the courier picks the order up or delivers it, as a venue: one tap navigates.
    Sent after the order's message; not at all once an offer it goes with has run out."""

    kind: Literal["order_place"] = "order_place"
    order_id: int
    role: PlaceRole
    lat: float
    lon: float
    address: str | None
    expires_at: datetime | None = None  # the offer's deadline, when it goes with an offer


class OfferAccepted(_Notice):
    """The offer's message becomes the order's, with the Complete button."""

    kind: Literal["offer_accepted"] = "offer_accepted"
    order_id: int
    district: str
    description: str


class OfferRefused(_Notice):
    """The courier declined the offer or let it run out: its message says so, no buttons."""

    kind: Literal["offer_refused"] = "offer_refused"
    order_id: int
    expired: bool


class OffersMissed(_Notice):
    """The courier let OFFER_MISSES_TO_OFFLINE offers run out in a row: their shift ended."""

    kind: Literal["offers_missed"] = "offers_missed"
    courier_id: int
    missed: int


class OrderWithdrawn(_Notice):
    """The order is no longer theirs; its message (an offer's too) loses its buttons."""

    kind: Literal["order_withdrawn"] = "order_withdrawn"
    order_id: int
    reason: WithdrawReason


class RegistrationApproved(_Notice):
    kind: Literal["registration_approved"] = "registration_approved"
    courier_id: int


class RegistrationRejected(_Notice):
    kind: Literal["registration_rejected"] = "registration_rejected"
    courier_id: int


class ShiftEnded(_Notice):
    """A dispatcher ended the courier's shift."""

    kind: Literal["shift_ended"] = "shift_ended"
    courier_id: int


class CourierBlocked(_Notice):
    kind: Literal["courier_blocked"] = "courier_blocked"
    courier_id: int


class CourierUnblocked(_Notice):
    kind: Literal["courier_unblocked"] = "courier_unblocked"
    courier_id: int


class OrderOverdue(_Notice):
    """The courier has carried the order longer than ORDER_OVERDUE_MINUTES."""

    kind: Literal["order_overdue"] = "order_overdue"
    order_id: int
    minutes: int


# To the chat an order was posted from.


class OrderPosted(_Notice):
    """The answer to posting an order in Telegram: whom it went to, or its place in the queue.
    It goes through the outbox, so posting never waits for the chat's flood limit."""

    kind: Literal["order_posted"] = "order_posted"
    order_id: int
    district: str
    courier_id: int | None
    courier_name: str | None
    position: int | None
    offered: bool = False  # to courier_id, who has not accepted yet
    distance_m: float | None = None  # from the courier's position to the pickup point


class DispatchAssigned(_Notice):
    kind: Literal["dispatch_assigned"] = "dispatch_assigned"
    order_id: int
    courier_id: int
    courier_name: str
    distance_m: float | None = None


class DispatchAccepted(_Notice):
    kind: Literal["dispatch_accepted"] = "dispatch_accepted"
    order_id: int
    courier_id: int
    courier_name: str
    seconds: int  # from the offer to the Accept


class DispatchRefused(_Notice):
    """Every free courier who may take the order declined it or let it run out: it waits."""

    kind: Literal["dispatch_refused"] = "dispatch_refused"
    order_id: int
    couriers: int  # how many declined it or let it run out, ever
    position: int


class DispatchCompleted(_Notice):
    kind: Literal["dispatch_completed"] = "dispatch_completed"
    order_id: int
    courier_id: int
    courier_name: str
    seconds: int


class DispatchRequeued(_Notice):
    kind: Literal["dispatch_requeued"] = "dispatch_requeued"
    order_id: int
    position: int


class DispatchOverdue(_Notice):
    kind: Literal["dispatch_overdue"] = "dispatch_overdue"
    order_id: int
    courier_id: int
    courier_name: str
    minutes: int


class CourierUnreachable(_Notice):
    """Telegram refused the courier's order message (they blocked the bot): the order moved on."""

    kind: Literal["courier_unreachable"] = "courier_unreachable"
    order_id: int
    courier_id: int
    courier_name: str


# To dispatchers and admins.


class RegistrationRequest(_Notice):
    """A new courier asks to join: one copy per staff member, with Approve and Reject."""

    kind: Literal["registration_request"] = "registration_request"
    courier_id: int
    name: str
    districts: tuple[str, ...]


class RegistrationClosed(_Notice):
    """Someone decided: every copy of the request in this chat loses its buttons."""

    kind: Literal["registration_closed"] = "registration_closed"
    courier_id: int
    name: str
    approved: bool


class DailyReport(_Notice):
    """The day's numbers, for every dispatcher and admin at DAILY_REPORT_AT."""

    kind: Literal["daily_report"] = "daily_report"
    stats: TodayStats


Notice = Annotated[
    OrderAssigned
    | OrderOffered
    | OrderPlace
    | OfferAccepted
    | OfferRefused
    | OffersMissed
    | OrderWithdrawn
    | RegistrationApproved
    | RegistrationRejected
    | ShiftEnded
    | CourierBlocked
    | CourierUnblocked
    | OrderOverdue
    | OrderPosted
    | DispatchAssigned
    | DispatchAccepted
    | DispatchRefused
    | DispatchCompleted
    | DispatchRequeued
    | DispatchOverdue
    | CourierUnreachable
    | RegistrationRequest
    | RegistrationClosed
    | DailyReport,
    Field(discriminator="kind"),
]
_NOTICE: TypeAdapter[Notice] = TypeAdapter(Notice)


class UnreadableNotice(ValueError):
    """An outbox row this release cannot read: an unknown kind or a malformed payload."""


def kind_of(notice_type: type[_Notice]) -> str:
    """The `kind` a type of notice is stored under."""
    return str(notice_type.model_fields["kind"].default)


def payload_of(notice: Notice) -> dict[str, Any]:
    return notice.model_dump(mode="json", exclude={"kind"})


def read(kind: str, payload: dict[str, Any]) -> Notice:
    if not isinstance(payload, dict):
        raise UnreadableNotice(f"{kind}: the payload is not an object")
    try:
        return _NOTICE.validate_python({**payload, "kind": kind})
    except ValidationError as error:
        raise UnreadableNotice(f"{kind}: {error.error_count()} problems") from error


# The notices whose messages a later notice about the same order edits.
ORDER_MESSAGES = (OrderAssigned, OrderOffered)


def supersedes(notice: Notice) -> tuple[tuple[str, ...], dict[str, int]] | None:
    """The earlier notices in the same chat whose messages this one replaces, if any."""
    match notice:
        case OrderWithdrawn(order_id=order_id):
            return tuple(kind_of(kind) for kind in ORDER_MESSAGES), {"order_id": order_id}
        case OfferAccepted(order_id=order_id) | OfferRefused(order_id=order_id):
            return (kind_of(OrderOffered),), {"order_id": order_id}
        case RegistrationClosed(courier_id=courier_id):
            return (kind_of(RegistrationRequest),), {"courier_id": courier_id}
    return None


def write(
    uow: UnitOfWork,
    chat_id: int,
    locale: str | None,
    notice: Notice,
    *,
    delivered_as: int | None = None,
) -> None:
    """One outbox row, indexed by the order or courier it is about.

    `delivered_as` records a message a handler already sent as this notice, so that later
    notices can supersede it like any other.
    """
    uow.outbox.add(
        chat_id,
        notice.kind,
        payload_of(notice),
        locale,
        clock.utcnow(),
        order_id=getattr(notice, "order_id", None),
        courier_id=getattr(notice, "courier_id", None),
        delivered_as=delivered_as,
    )


# Who hears of what.


def order_assigned(uow: UnitOfWork, order: Order, courier: Courier, district: str) -> None:
    notice = OrderAssigned(order_id=order.id, district=district, description=order.description)
    to_courier(uow, courier, notice)
    _places(uow, order, courier, None)


def order_offered(
    uow: UnitOfWork, order: Order, courier: Courier, district: str, expires_at: datetime
) -> None:
    notice = OrderOffered(
        order_id=order.id,
        district=district,
        description=order.description,
        expires_at=expires_at,
    )
    to_courier(uow, courier, notice)
    _places(uow, order, courier, expires_at)


def _places(uow: UnitOfWork, order: Order, courier: Courier, expires_at: datetime | None) -> None:
    """The order's pickup and drop-off points, each as a venue after its message."""
    for role, point in ((PlaceRole.PICKUP, order.pickup), (PlaceRole.DROPOFF, order.dropoff)):
        if point is not None:
            place = OrderPlace(
                order_id=order.id,
                role=role,
                lat=point.lat,
                lon=point.lon,
                address=point.address,
                expires_at=expires_at,
            )
            to_courier(uow, courier, place)


def order_withdrawn(
    uow: UnitOfWork, order: Order, courier: Courier, reason: WithdrawReason
) -> None:
    to_courier(uow, courier, OrderWithdrawn(order_id=order.id, reason=reason))


def to_courier(uow: UnitOfWork, courier: Courier, notice: Notice) -> None:
    """In the courier's chat; a courier not in Telegram yet reads their orders over HTTP."""
    if courier.telegram_id is not None:
        write(uow, courier.telegram_id, courier.locale, notice)


def to_dispatch_chat(uow: UnitOfWork, order: Order, notice: Notice) -> None:
    """In the chat the order was posted from; an order posted over HTTP has none."""
    if order.dispatcher_chat_id is not None:
        write(uow, order.dispatcher_chat_id, order.dispatcher_locale, notice)


def order_posted(
    uow: UnitOfWork, order: Order, view: OrderView, distance_m: float | None = None
) -> None:
    """The chat it was posted from hears whom it went to (and how far away they were), or its
    place in the queue."""
    notice = OrderPosted(
        order_id=order.id,
        district=view.district,
        courier_id=view.courier_id,
        courier_name=view.courier_name,
        position=view.queue_position,
        offered=view.status is OrderStatus.OFFERED,
        distance_m=distance_m,
    )
    to_dispatch_chat(uow, order, notice)


def dispatch_assigned(
    uow: UnitOfWork, order: Order, courier: Courier, distance_m: float | None = None
) -> None:
    notice = DispatchAssigned(
        order_id=order.id,
        courier_id=courier.id,
        courier_name=courier.name,
        distance_m=distance_m,
    )
    to_dispatch_chat(uow, order, notice)


async def to_staff(uow: UnitOfWork, notice: Notice) -> None:
    """Every dispatcher and admin, in their own chat."""
    for member in await uow.staff.all():
        write(uow, member.telegram_id, member.locale, notice)


async def registration_request(uow: UnitOfWork, courier: Courier, districts: list[str]) -> None:
    """Every dispatcher and admin gets a copy with Approve and Reject."""
    notice = RegistrationRequest(
        courier_id=courier.id, name=courier.name, districts=tuple(districts)
    )
    await to_staff(uow, notice)


async def registration_closed(
    uow: UnitOfWork, courier: Courier, approved: bool, *, only_chat: int | None = None
) -> None:
    """Every chat that got a copy of the request sees the verdict instead of the buttons."""
    notice = RegistrationClosed(courier_id=courier.id, name=courier.name, approved=approved)
    staff = {member.telegram_id: member.locale for member in await uow.staff.all()}
    chats = await uow.outbox.chats_told(kind_of(RegistrationRequest), courier.id)
    for chat_id in chats if only_chat is None else [only_chat]:
        write(uow, chat_id, staff.get(chat_id), notice)
