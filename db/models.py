"""SQLAlchemy models. The dispatch invariants are enforced here too, not only in services."""

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import UTCDateTime, state_column

# Row ids are INTEGER columns: PostgreSQL refuses anything past this, so it is never asked.
MAX_ID = 2**31 - 1
NAME_MAX = 64
# Case folding can triple a name's length ("ß" becomes "ss", "ΐ" three code points).
NAME_KEY_MAX = 3 * NAME_MAX
SOURCE_KEY_MAX = 320
IDEMPOTENCY_KEY_MAX = 255
ADDRESS_MAX = 256

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class CourierStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    BLOCKED = "blocked"


class OrderStatus(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"  # waiting for its courier to accept within OFFER_SECONDS
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class OrderSource(StrEnum):
    BOT = "bot"
    API = "api"


class WebhookState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # tried for WEBHOOK_RETRY_HOURS, or its endpoint deleted or disabled


class OfferOutcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # cancelled, reassigned, or the courier's shift ended first


class StaffRole(StrEnum):
    DISPATCHER = "dispatcher"
    ADMIN = "admin"


class OrderEventKind(StrEnum):
    CREATED = "created"
    OFFERED = "offered"
    DECLINED = "declined"  # its courier declined the offer: back in the queue
    EXPIRED = "expired"  # its courier did not answer the offer in time: back in the queue
    ASSIGNED = "assigned"
    REQUEUED = "requeued"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


def _public_id() -> Mapped[UUID]:
    """The public id (`sid`) the HTTP API names a row by; short numbers are for people."""
    return mapped_column(Uuid, unique=True, default=uuid4)


def _partial(condition: str) -> dict[str, Any]:
    """Keyword arguments that make an index partial on both SQLite and PostgreSQL."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


@dataclass(frozen=True, slots=True)
class Point:
    """A place on the Earth: latitude and longitude in degrees (WGS 84), and what it is called."""

    lat: float
    lon: float
    address: str | None = None


def _point(lat: float | None, lon: float | None, address: str | None) -> Point | None:
    return None if lat is None or lon is None else Point(lat, lon, address)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


courier_districts = Table(
    "courier_districts",
    Base.metadata,
    Column("courier_id", ForeignKey("couriers.id", ondelete="CASCADE"), primary_key=True),
    Column("district_id", ForeignKey("districts.id", ondelete="CASCADE"), primary_key=True),
    # The courier's free_since while they are active and online, else NULL: a copy kept by
    # CourierRepository so that finding a district's free courier is one index lookup.
    Column("free_since", UTCDateTime()),
    # The courier's position's cell (CourierPosition.cell), copied by PositionRepository:
    # the free couriers near a point are then read from one index of the district's free.
    Column("cell", BigInteger),
    Index("ix_courier_districts_district", "district_id", "courier_id"),
    Index(
        "ix_courier_districts_free_near",
        "district_id",
        "cell",
        **_partial("free_since IS NOT NULL"),
    ),
    # The free couriers of each district, free the longest first.
    Index(
        "ix_courier_districts_free",
        "district_id",
        "free_since",
        "courier_id",
        **_partial("free_since IS NOT NULL"),
    ),
)


class District(Base):
    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[UUID] = _public_id()
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    # The name as compared (services.validation.name_key): unique, and what lookups match.
    name_key: Mapped[str] = mapped_column(String(NAME_KEY_MAX), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Courier(Base):
    __tablename__ = "couriers"
    __table_args__ = (CheckConstraint("status IN ('pending', 'active', 'blocked')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[UUID] = _public_id()
    # None for a courier created over HTTP until they open their Telegram link.
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    status: Mapped[CourierStatus] = mapped_column(state_column(CourierStatus))
    online: Mapped[bool] = mapped_column(Boolean)
    # NULL exactly while the courier carries or is offered an order; otherwise when they
    # became free.
    free_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Offers that ran out unanswered since the courier last answered one.
    missed_offers: Mapped[int] = mapped_column(Integer, default=0)


class Shop(Base):
    """A shop's software over the HTTP API. The one with an empty `name_key` stands for the
    tokens in API_TOKENS."""

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[UUID] = _public_id()
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    name_key: Mapped[str] = mapped_column(String(NAME_KEY_MAX), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when one of its webhook endpoints is disabled; the next API call tells the shop.
    endpoint_disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ShopToken(Base):
    """A shop's bearer token, kept as its SHA-256: the database alone lets nobody in."""

    __tablename__ = "shop_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    hint: Mapped[str] = mapped_column(String(16))  # its first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("source IN ('bot', 'api')", name="source"),
        CheckConstraint(
            "(status = 'queued' AND courier_id IS NULL AND assigned_at IS NULL"
            " AND completed_at IS NULL AND cancelled_at IS NULL)"
            " OR (status = 'offered' AND courier_id IS NOT NULL AND assigned_at IS NULL"
            " AND completed_at IS NULL AND cancelled_at IS NULL)"
            " OR (status = 'assigned' AND courier_id IS NOT NULL AND assigned_at IS NOT NULL"
            " AND completed_at IS NULL AND cancelled_at IS NULL)"
            " OR (status = 'completed' AND courier_id IS NOT NULL AND assigned_at IS NOT NULL"
            " AND completed_at IS NOT NULL AND cancelled_at IS NULL)"
            " OR (status = 'cancelled' AND completed_at IS NULL AND cancelled_at IS NOT NULL)",
            name="status_matches_timestamps",
        ),
        # One order offered or in progress per courier, whatever the services do.
        Index(
            "uq_orders_one_in_progress",
            "courier_id",
            unique=True,
            **_partial("status IN ('offered', 'assigned')"),
        ),
        # The queue of each district, oldest first; holds only waiting orders.
        Index("ix_orders_queue", "district_id", "id", **_partial("status = 'queued'")),
        Index(
            "ix_orders_courier_completed",
            "courier_id",
            "completed_at",
            **_partial("status = 'completed'"),
        ),
        Index("ix_orders_created_at", "created_at"),
        Index("ix_orders_completed_at", "completed_at"),
        # A shop's orders, in the order they came: GET /order pages through this.
        Index("ix_orders_shop", "shop_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[UUID] = _public_id()
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[OrderStatus] = mapped_column(state_column(OrderStatus))
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("couriers.id"))
    # The courier a dispatcher last took this order from: it never goes back to them by itself.
    taken_from_courier_id: Mapped[int | None] = mapped_column(ForeignKey("couriers.id"))
    source: Mapped[OrderSource] = mapped_column(state_column(OrderSource))
    # Who posted it in Telegram, and where to tell them; None for an order posted over HTTP.
    dispatcher_id: Mapped[int | None] = mapped_column(BigInteger)
    dispatcher_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    dispatcher_locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When its courier and dispatch chat were reminded that it is overdue; cleared on assignment.
    overdue_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What posted it, once: a Telegram message or form, or a shop's Idempotency-Key. A second
    # copy of the same source finds this order instead of posting another.
    source_key: Mapped[str | None] = mapped_column(String(SOURCE_KEY_MAX), unique=True)
    # The shop that posted it over HTTP: the only one that may see or change it there.
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id"))
    # How many couriers declined it or let its offer run out (who: in `offers`).
    refusals: Mapped[int] = mapped_column(Integer, default=0)
    # Where it is picked up and delivered, when the dispatcher or the shop said.
    pickup_lat: Mapped[float | None] = mapped_column(Float)
    pickup_lon: Mapped[float | None] = mapped_column(Float)
    pickup_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    dropoff_lat: Mapped[float | None] = mapped_column(Float)
    dropoff_lon: Mapped[float | None] = mapped_column(Float)
    dropoff_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))

    @property
    def pickup(self) -> Point | None:
        return _point(self.pickup_lat, self.pickup_lon, self.pickup_address)

    @property
    def dropoff(self) -> Point | None:
        return _point(self.dropoff_lat, self.dropoff_lon, self.dropoff_address)

    @property
    def origin(self) -> Point | None:
        """Where its courier should come from: the pickup point, else the drop-off point."""
        return self.pickup or self.dropoff

    def place(self, pickup: Point | None, dropoff: Point | None) -> None:
        """Set both points (None: unknown)."""
        for prefix, point in (("pickup", pickup), ("dropoff", dropoff)):
            setattr(self, f"{prefix}_lat", point.lat if point else None)
            setattr(self, f"{prefix}_lon", point.lon if point else None)
            setattr(self, f"{prefix}_address", point.address if point else None)


class CourierPosition(Base):
    """Where a courier on shift last was, from Telegram; erased when their shift ends.

    `cell` is the position's H3 cell at the finest resolution, as an integer: the cells of any
    coarser resolution are ranges of these (services.geo). It is copied to the courier's
    district rows, so that one index finds a district's free couriers near a point, however
    many others there are. A position counts until `fresh_until`: a one-time location for
    LOCATION_FRESH_SECONDS; a live one while its edits keep coming, until it ends.
    """

    __tablename__ = "courier_positions"

    courier_id: Mapped[int] = mapped_column(
        ForeignKey("couriers.id", ondelete="CASCADE"), primary_key=True
    )
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    cell: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # when Telegram had it
    # The update it came in: of two in the same second (Telegram's dates are in seconds),
    # the later update is the later position.
    update_id: Mapped[int] = mapped_column(BigInteger, default=0)
    fresh_until: Mapped[datetime] = mapped_column(UTCDateTime())
    live_until: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: not live


class Offer(Base):
    """An order offered to a courier until `expires_at`: open while `outcome` is NULL.

    The deadline lives here, so any instance fires it, after any restart. The offers a courier
    declined or let run out are why an order never goes to them again by itself.
    """

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint(
            "outcome IS NULL OR outcome IN ('accepted', 'declined', 'expired', 'withdrawn')",
            name="outcome",
        ),
        # One open offer per order and per courier, whatever the services do.
        Index("uq_offers_open_order", "order_id", unique=True, **_partial("outcome IS NULL")),
        Index("uq_offers_open_courier", "courier_id", unique=True, **_partial("outcome IS NULL")),
        # The deadlines to fire, soonest first.
        Index("ix_offers_deadline", "expires_at", **_partial("outcome IS NULL")),
        Index("ix_offers_order", "order_id", "courier_id"),
        Index("ix_offers_courier", "courier_id", "offered_at"),
        Index("ix_offers_offered_at", "offered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    courier_id: Mapped[int] = mapped_column(ForeignKey("couriers.id"))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[OfferOutcome | None] = mapped_column(state_column(OfferOutcome))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OrderEvent(Base):
    """Append-only history of every order state change."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[OrderEventKind] = mapped_column(state_column(OrderEventKind))
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("couriers.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffMember(Base):
    __tablename__ = "staff"
    __table_args__ = (CheckConstraint("role IN ('dispatcher', 'admin')", name="role"),)

    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role: Mapped[StaffRole] = mapped_column(state_column(StaffRole))
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invite(Base):
    """A one-time Telegram deep link: it registers a new courier without approval, or, made
    for a courier created over HTTP (`courier_id`), connects their Telegram account."""

    __tablename__ = "invites"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256, in hex
    created_by: Mapped[int | None] = mapped_column(BigInteger)  # None: over HTTP
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("couriers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_by: Mapped[int | None] = mapped_column(ForeignKey("couriers.id"))


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # Telegram refused it for good; never retried


class OutboxMessage(Base):
    """A notice to deliver, written in the same transaction as the change it reports.

    The sender claims the oldest pending row of a chat with a lease (`claimed_until`), so one
    sender at a time delivers a chat's rows, in order; a failed attempt sets when to try again.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
        # Each chat's waiting rows, oldest first: what the sender claims from.
        Index("ix_outbox_pending", "chat_id", "id", **_partial("state = 'pending'")),
        Index("ix_outbox_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # Which services.notices.Notice the payload holds.
    notice: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    locale: Mapped[str | None] = mapped_column(String(8))
    # What the notice is about, so a later notice can find the messages it supersedes.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("couriers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[OutboxState] = mapped_column(state_column(OutboxState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Not before: set after a failed attempt.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A sender's lease on the row (who, until when); past it, another sender may take the row.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The Telegram message this row became, so later rows can edit it.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookEndpoint(Base):
    """Where a shop wants to hear of its orders' changes, signed with `secret`."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[UUID] = _public_id()
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str] | None] = mapped_column(JSON)  # None: every event
    secret: Mapped[str] = mapped_column(String(64))  # whsec_ and base64 of the signing key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Since when every delivery failed (None: the last one went through).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """An event for an endpoint, written in the transaction of the change it reports and
    delivered in order per endpoint: the sender claims an endpoint's oldest pending row."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
        Index(
            "ix_webhook_deliveries_pending", "endpoint_id", "id", **_partial("state = 'pending'")
        ),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)  # webhook-id: msg_...
    event: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    # The order as it was right after the change (services render it as the API shows it).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[WebhookState] = mapped_column(state_column(WebhookState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)


class DailyReport(Base):
    """One row per day whose report went out: the report is written once, whoever runs it."""

    __tablename__ = "daily_reports"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboxState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # its handler failed for a reason of its own; not handled again


class InboxUpdate(Base):
    """A Telegram update, stored before Telegram is told it was taken.

    A chat's updates are handled one at a time in the order they were stored, by whichever
    instance holds the chat's lease. The row is marked done in the same transaction as the
    update's effects, so a copy of it (Telegram's redelivery, a replay at start) changes
    nothing.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'done', 'failed')", name="state"),
        UniqueConstraint("bot_id", "update_id"),
        Index("ix_inbox_pending", "chat_id", "id", **_partial("state = 'pending'")),
        # The leases held in each chat: none may be, for its next update to be claimed.
        Index("ix_inbox_leased", "chat_id", "claimed_until", **_partial("claimed_by IS NOT NULL")),
        Index("ix_inbox_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bot_id: Mapped[int] = mapped_column(BigInteger)
    update_id: Mapped[int] = mapped_column(BigInteger)
    # Whose updates take turns: the chat, or the user for an update with no chat.
    chat_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)  # the update's JSON, as Telegram sent it
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[InboxState] = mapped_column(state_column(InboxState))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A shop's `Idempotency-Key`: the request it came with, and the answer to give again.

    Taken when the request begins; marked in the transaction that does its work; its answer
    kept once it is known. While `status` is NULL the request is running (until
    `locked_until`), or its process died: a retry then runs it again.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("client", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))  # whose key it is
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # While the request runs: until when its process holds the key (it renews nothing: a
    # request outliving this is taken over by a retry).
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the transaction that did the request's work committed (None: it did not, yet).
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
