"""Read models: the plain, frozen data that services return. Never a live ORM row."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar
from uuid import UUID

from db.models import CourierStatus, OrderSource, OrderStatus, Point, StaffRole

__all__ = [
    "Acceptance",
    "CompletionResult",
    "CourierCard",
    "CourierStats",
    "CourierStatus",
    "CourierView",
    "DistrictView",
    "Identity",
    "InviteView",
    "NewCourier",
    "OrderSource",
    "OrderStatus",
    "OrderView",
    "Page",
    "PendingRequests",
    "Point",
    "PositionView",
    "RosterChange",
    "ShopView",
    "StaffRole",
    "StaffView",
    "TodayStats",
    "WebhookCall",
    "WebhookView",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DistrictView:
    id: int
    name: str
    sid: UUID | None = None
    couriers: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class CourierView:
    id: int
    sid: UUID
    telegram_id: int | None  # None until a courier created over HTTP links Telegram
    name: str
    status: CourierStatus
    online: bool
    busy: bool
    districts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PositionView:
    """Where a courier was last, by Telegram, and until when that counts."""

    lat: float
    lon: float
    at: datetime
    fresh_until: datetime
    live_until: datetime | None  # a live location's end; None: a one-time location

    def fresh(self, now: datetime) -> bool:
        return now < self.fresh_until


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    sid: UUID
    district: str
    description: str
    status: OrderStatus
    source: OrderSource
    courier_id: int | None
    courier_sid: UUID | None
    courier_name: str | None
    courier_telegram_id: int | None
    dispatcher_chat_id: int | None
    created_at: datetime
    assigned_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    queue_position: int | None = None
    offer_expires_at: datetime | None = None  # while offered: when the offer runs out
    pickup: Point | None = None
    dropoff: Point | None = None

    @property
    def delivery_time(self) -> timedelta | None:
        if self.assigned_at is None or self.completed_at is None:
            return None
        return self.completed_at - self.assigned_at


@dataclass(frozen=True, slots=True)
class CompletionResult:
    order: OrderView
    already_completed: bool


@dataclass(frozen=True, slots=True)
class Acceptance:
    """How a courier answered the offers made to them lately (services.offers.ACCEPTANCE_WINDOW)."""

    offers: int  # accepted, declined or let run out; withdrawn ones are not theirs to answer
    accepted: int
    median_to_accept: timedelta | None

    @property
    def rate(self) -> float:
        return self.accepted / self.offers if self.offers else 0.0


@dataclass(frozen=True, slots=True)
class CourierCard:
    courier: CourierView
    active_order: OrderView | None
    total_completed: int
    average_delivery: timedelta | None
    average_per_day: float | None
    acceptance: Acceptance | None = None  # None: no offer answered lately
    offer: OrderView | None = None  # offered to them, not accepted yet
    position: PositionView | None = None  # kept during a shift only


@dataclass(frozen=True, slots=True)
class CourierStats:
    courier_id: int
    name: str
    completed: int
    average_delivery: timedelta | None
    acceptance: Acceptance | None = None


@dataclass(frozen=True, slots=True)
class TodayStats:
    day: date
    posted: int
    completed: int
    queued: int
    in_progress: int
    average_delivery: timedelta | None
    couriers: tuple[CourierStats, ...]
    offered: int = 0


@dataclass(frozen=True, slots=True)
class RosterChange:
    """A courier after a dispatcher changed them, and the order it took from them, if any."""

    courier: CourierView
    returned_order_id: int | None


@dataclass(frozen=True, slots=True)
class PendingRequests:
    """How many waiting requests were sent, and whether more wait behind them."""

    sent: int
    more: bool


@dataclass(frozen=True, slots=True)
class InviteView:
    token: str
    valid_days: int


@dataclass(frozen=True, slots=True)
class NewCourier:
    """A courier created over HTTP, and the token of the Telegram link that connects them."""

    courier: CourierView
    link_token: str


@dataclass(frozen=True, slots=True)
class StaffView:
    telegram_id: int
    role: StaffRole


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a Telegram user is to the bot; one person may be staff and a courier."""

    telegram_id: int
    role: StaffRole | None
    courier: CourierView | None

    @property
    def is_admin(self) -> bool:
        return self.role is StaffRole.ADMIN

    @property
    def is_dispatcher(self) -> bool:
        return self.role is not None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    offset: int
    total: int


@dataclass(frozen=True, slots=True)
class ShopView:
    sid: UUID
    name: str
    tokens: tuple[str, ...]  # each token's first characters, oldest first
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookView:
    sid: UUID
    url: str
    events: tuple[str, ...] | None  # None: every event
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    secret: str | None = None  # only in the answer that registers it


@dataclass(frozen=True, slots=True)
class WebhookCall:
    """One event for an endpoint, and how its delivery went."""

    message_id: str
    event: str
    order_sid: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_status: int | None
    last_error: str | None
