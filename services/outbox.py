"""Delivering the outbox: what is waiting, and recording what became of it."""

from dataclasses import dataclass
from typing import Any

from db.uow import UnitOfWork
from services import clock
from services.notifications import Notice

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    chat_id: int
    notice: Notice
    payload: dict[str, Any]
    locale: str | None
    # The courier's earlier order message, whose Complete button must go.
    stale_message_id: int | None


async def pending(uow: UnitOfWork, limit: int) -> list[OutboxItem]:
    """The oldest undelivered notifications that still have attempts left."""
    items = []
    for row in await uow.outbox.pending(limit, MAX_ATTEMPTS):
        notice = Notice(row.kind)
        stale = None
        if notice is Notice.ORDER_WITHDRAWN and row.order_id is not None:
            stale = await uow.outbox.sent_message_id(
                row.chat_id, row.order_id, Notice.ORDER_ASSIGNED
            )
        items.append(OutboxItem(row.id, row.chat_id, notice, row.payload, row.locale, stale))
    return items


async def mark_sent(uow: UnitOfWork, item_id: int, message_id: int | None) -> None:
    await uow.outbox.mark_sent(item_id, message_id, clock.utcnow())
    await uow.commit()


async def mark_failed(uow: UnitOfWork, item_id: int, error: str, *, final: bool) -> None:
    """Count a failed attempt; a final failure (the user blocked the bot) is never retried."""
    await uow.outbox.mark_failed(item_id, error, give_up=final, max_attempts=MAX_ATTEMPTS)
    await uow.commit()
