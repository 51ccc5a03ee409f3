"""Delivering the outbox: what is waiting, and recording what became of it."""

from dataclasses import dataclass

from db.uow import UnitOfWork
from services import clock, notices
from services.notices import Notice, UnreadableNotice

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    chat_id: int
    notice: Notice | UnreadableNotice
    locale: str | None
    # Earlier messages in this chat that the notice replaces (see notices.supersedes).
    superseded: tuple[int, ...]


async def pending(uow: UnitOfWork, limit: int) -> list[Delivery]:
    """The oldest undelivered notices that still have attempts left."""
    deliveries = []
    async with uow.read():
        for row in await uow.outbox.pending(limit, MAX_ATTEMPTS):
            notice: Notice | UnreadableNotice
            try:
                notice = notices.read(row.notice, row.payload)
            except UnreadableNotice as error:
                notice = error
            superseded = await _superseded(uow, row.chat_id, notice)
            deliveries.append(Delivery(row.id, row.chat_id, notice, row.locale, superseded))
    return deliveries


async def _superseded(
    uow: UnitOfWork, chat_id: int, notice: Notice | UnreadableNotice
) -> tuple[int, ...]:
    replaced = None if isinstance(notice, UnreadableNotice) else notices.supersedes(notice)
    if replaced is None:
        return ()
    kind, about = replaced
    return tuple(await uow.outbox.message_ids(chat_id, kind, **about))


async def mark_sent(uow: UnitOfWork, delivery_id: int, message_id: int | None) -> None:
    async with uow.write():
        await uow.outbox.mark_sent(delivery_id, message_id, clock.utcnow())
        await uow.commit()


async def mark_failed(uow: UnitOfWork, delivery_id: int, error: str, *, final: bool) -> None:
    """Count a failed attempt; a final failure (the user blocked the bot) is never retried."""
    async with uow.write():
        await uow.outbox.mark_failed(delivery_id, error, give_up=final, max_attempts=MAX_ATTEMPTS)
        await uow.commit()
