"""Domain errors: each has a stable `code` and the `params` a front end needs to explain it."""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # Input
    USAGE = "usage"
    COURIER_NAME_LENGTH = "courier_name_length"
    DISTRICT_NAME_LENGTH = "district_name_length"
    DESCRIPTION_LENGTH = "description_length"
    NO_DISTRICTS = "no_districts"
    POINT_INVALID = "point_invalid"
    # Roles
    DISPATCHER_ONLY = "dispatcher_only"
    ADMIN_ONLY = "admin_only"
    COURIER_ONLY = "courier_only"
    INVITE_IN_GROUP = "invite_in_group"
    NOT_YOUR_ORDER = "not_your_order"
    # Missing things
    DISTRICT_NOT_FOUND = "district_not_found"
    DISTRICT_UNKNOWN = "district_unknown"
    COURIER_NOT_FOUND = "courier_not_found"
    ORDER_NOT_FOUND = "order_not_found"
    INVITE_INVALID = "invite_invalid"
    DISPATCHER_NOT_FOUND = "dispatcher_not_found"
    # States that do not allow it
    DISTRICT_EXISTS = "district_exists"
    ALREADY_REGISTERED = "already_registered"
    NOT_PENDING = "not_pending"
    COURIER_PENDING = "courier_pending"
    COURIER_BLOCKED = "courier_blocked"
    ALREADY_BLOCKED = "already_blocked"
    COURIER_NOT_BLOCKED = "courier_not_blocked"
    COURIER_UNAVAILABLE = "courier_unavailable"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_COMPLETED = "order_completed"
    ORDER_CHANGED = "order_changed"
    ALREADY_POSTED = "already_posted"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_BUSY = "idempotency_key_busy"
    IDEMPOTENCY_ANSWER_LOST = "idempotency_answer_lost"
    ORDER_NOT_IN_PROGRESS = "order_not_in_progress"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    OFFER_WITHDRAWN = "offer_withdrawn"
    NO_COURIER_FREE = "no_courier_free"
    ALREADY_LINKED = "already_linked"
    ALREADY_ASSIGNED_TO = "already_assigned_to"
    ALREADY_STAFF = "already_staff"
    CANNOT_REVOKE_ADMIN = "cannot_revoke_admin"
    # Shops and their webhooks
    SHOP_NAME_LENGTH = "shop_name_length"
    SHOP_NOT_FOUND = "shop_not_found"
    WEBHOOK_URL_INVALID = "webhook_url_invalid"
    WEBHOOK_URL_PRIVATE = "webhook_url_private"
    WEBHOOK_TOO_MANY = "webhook_too_many"
    WEBHOOK_NOT_FOUND = "webhook_not_found"


# Codes only the HTTP API (or the command line) can meet; the bot has no message for them.
API_ONLY = frozenset(
    {
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ErrorCode.IDEMPOTENCY_KEY_BUSY,
        ErrorCode.IDEMPOTENCY_ANSWER_LOST,
        ErrorCode.SHOP_NAME_LENGTH,
        ErrorCode.SHOP_NOT_FOUND,
        ErrorCode.WEBHOOK_URL_INVALID,
        ErrorCode.WEBHOOK_URL_PRIVATE,
        ErrorCode.WEBHOOK_TOO_MANY,
        ErrorCode.WEBHOOK_NOT_FOUND,
        ErrorCode.POINT_INVALID,  # Telegram's locations are always valid
    }
)


class DomainError(Exception):
    """Base of every error a user can cause; never a bug."""

    def __init__(self, code: ErrorCode, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class NotFound(DomainError):
    """The district, courier, order or invite named does not exist."""


class UnknownDistrict(NotFound):
    """An order's text starts with no district name we know."""

    def __init__(self, text: str) -> None:
        super().__init__(ErrorCode.DISTRICT_UNKNOWN, text=text)


class Forbidden(DomainError):
    """The user's role does not allow this."""


class InvalidInput(DomainError):
    """The values given break a rule (length, emptiness, format)."""


class Conflict(DomainError):
    """The request is valid, but the current state does not allow it."""
