"""Outbox rows: who must hear about a change, written in the change's own transaction.

Nothing here sends anything. The bot's sender renders and delivers the rows later,
so a change never commits without its notifications, nor a notification without its change.
"""

from enum import StrEnum
from typing import Any

from db.models import Courier, Order
from db.uow import UnitOfWork
from services import clock


class Notice(StrEnum):
    # To a courier.
    ORDER_ASSIGNED = "order_assigned"
    ORDER_WITHDRAWN = "order_withdrawn"
    REGISTRATION_APPROVED = "registration_approved"
    REGISTRATION_REJECTED = "registration_rejected"
    # To the chat an order was posted from.
    DISPATCH_ASSIGNED = "dispatch_assigned"
    DISPATCH_COMPLETED = "dispatch_completed"
    DISPATCH_REQUEUED = "dispatch_requeued"
    # To every dispatcher and admin.
    REGISTRATION_REQUEST = "registration_request"


class WithdrawReason(StrEnum):
    CANCELLED = "cancelled"
    REASSIGNED = "reassigned"


def _write(
    uow: UnitOfWork,
    chat_id: int,
    notice: Notice,
    locale: str | None,
    order_id: int | None = None,
    **payload: Any,
) -> None:
    """One outbox row; an order's rows carry its id in the payload too, for rendering."""
    if order_id is not None:
        payload["order_id"] = order_id
    uow.outbox.add(chat_id, notice, payload, locale, order_id, clock.utcnow())


def order_assigned(uow: UnitOfWork, order: Order, courier: Courier, district: str) -> None:
    """The courier's order message, the one with the Complete button."""
    _write(
        uow,
        courier.telegram_id,
        Notice.ORDER_ASSIGNED,
        courier.locale,
        order.id,
        district=district,
        description=order.description,
    )


def order_withdrawn(
    uow: UnitOfWork, order: Order, courier: Courier, reason: WithdrawReason
) -> None:
    _write(
        uow,
        courier.telegram_id,
        Notice.ORDER_WITHDRAWN,
        courier.locale,
        order.id,
        reason=reason,
    )


def dispatch_assigned(uow: UnitOfWork, order: Order, courier: Courier) -> None:
    _write(
        uow,
        order.dispatcher_chat_id,
        Notice.DISPATCH_ASSIGNED,
        order.dispatcher_locale,
        order.id,
        courier_id=courier.id,
        courier_name=courier.name,
    )


def dispatch_completed(uow: UnitOfWork, order: Order, courier: Courier, seconds: int) -> None:
    _write(
        uow,
        order.dispatcher_chat_id,
        Notice.DISPATCH_COMPLETED,
        order.dispatcher_locale,
        order.id,
        courier_id=courier.id,
        courier_name=courier.name,
        seconds=seconds,
    )


def dispatch_requeued(uow: UnitOfWork, order: Order, position: int) -> None:
    _write(
        uow,
        order.dispatcher_chat_id,
        Notice.DISPATCH_REQUEUED,
        order.dispatcher_locale,
        order.id,
        position=position,
    )


def registration_decided(uow: UnitOfWork, courier: Courier, approved: bool) -> None:
    notice = Notice.REGISTRATION_APPROVED if approved else Notice.REGISTRATION_REJECTED
    _write(uow, courier.telegram_id, notice, courier.locale, courier_id=courier.id)


async def registration_request(uow: UnitOfWork, courier: Courier, districts: list[str]) -> None:
    for member in await uow.staff.all():
        _write(
            uow,
            member.telegram_id,
            Notice.REGISTRATION_REQUEST,
            member.locale,
            courier_id=courier.id,
            name=courier.name,
            districts=districts,
        )
