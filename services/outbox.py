"""Delivering the outbox: claiming rows, looking up what they supersede, recording outcomes.

The sender (bot/telegram/sender.py) decides what Telegram's answers mean; this module only keeps the
rows' state, so that every row is delivered, refused for good, or tried again later.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from db.uow import UnitOfWork
from services import clock, notices, pruning
from services.notices import (
    Notice,
    OfferAccepted,
    OfferRefused,
    RegistrationRequest,
    UnreadableNotice,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row a sender holds the lease on."""

    id: int
    chat_id: int
    notice: Notice | UnreadableNotice
    locale: str | None
    attempts: int  # attempts before this one (each counted, whatever came of it)


@dataclass(frozen=True, slots=True)
class Sent:
    delivery_id: int
    message_id: int | None  # None when the notice only edited earlier messages


@dataclass(frozen=True, slots=True)
class Refused:
    """Telegram will never take it: not retried."""

    delivery_id: int
    error: str


@dataclass(frozen=True, slots=True)
class RetryAt:
    delivery_id: int
    at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class Untried:
    """Not attempted: an earlier row of its chat must go first, its chat moved, or its sender
    stopped. Its lease is given back and it is claimed again as it was."""

    delivery_id: int


Outcome = Sent | Refused | RetryAt | Untried


async def claim(
    uow: UnitOfWork,
    owner: str,
    *,
    chats: int,
    per_chat: int,
    lease: timedelta,
    busy: Collection[int] = (),
) -> list[Delivery]:
    """Lease to `owner` the next rows of up to `chats` chats not in `busy`, in order within
    each chat."""
    now = clock.utcnow()
    async with uow.write():
        rows = await uow.outbox.queue.claim(
            now, now + lease, owner, chats=chats, per_chat=per_chat, busy=busy
        )
        await uow.commit()
    return [
        Delivery(row.id, row.chat_id, _read(row.notice, row.payload), row.locale, row.attempts)
        for row in rows
    ]


def _read(kind: str, payload: dict[str, object]) -> Notice | UnreadableNotice:
    try:
        return notices.read(kind, payload)
    except UnreadableNotice as error:
        return error


async def any_due(uow: UnitOfWork) -> bool:
    """Whether a row waits that could be claimed now (a read: no write lock taken)."""
    async with uow.read():
        return await uow.outbox.queue.any_due(clock.utcnow())


async def superseded(uow: UnitOfWork, delivery: Delivery) -> tuple[int, ...]:
    """The earlier messages in the chat that this notice replaces, looked up as it is sent."""
    if isinstance(delivery.notice, UnreadableNotice):
        return ()
    replaced = notices.supersedes(delivery.notice)
    if replaced is None:
        return ()
    kinds, about = replaced
    async with uow.read():
        found = await uow.outbox.message_ids(delivery.chat_id, kinds, **about)
    if isinstance(delivery.notice, OfferAccepted | OfferRefused):
        return tuple(found[-1:])  # the latest offer: earlier ones of the order were closed
    return tuple(found)


async def record(uow: UnitOfWork, owner: str, outcomes: Sequence[Outcome]) -> None:
    """Write what became of these rows, in one transaction; rows whose lease another sender
    has taken since are theirs now, and left alone."""
    async with uow.write():
        await uow.outbox.mark_sent(
            [(o.delivery_id, o.message_id) for o in outcomes if isinstance(o, Sent)],
            clock.utcnow(),
            owner,
        )
        await uow.outbox.mark_failed(
            [(o.delivery_id, o.error) for o in outcomes if isinstance(o, Refused)], owner
        )
        await uow.outbox.retry_later(
            [(o.delivery_id, o.at, o.error) for o in outcomes if isinstance(o, RetryAt)], owner
        )
        await uow.outbox.release((o.delivery_id for o in outcomes if isinstance(o, Untried)), owner)
        await uow.commit()


async def renew(
    uow: UnitOfWork, owner: str, lease: timedelta, chat_ids: Collection[int]
) -> set[int]:
    """Keep the owner's leases on the rows of these chats (those it is sending to) for another
    `lease`; the chats whose leases it still held. Rows it holds in other chats, left over by
    a claim that failed on the way back, run out and are claimed again."""
    async with uow.write():
        held = await uow.outbox.renew(owner, clock.utcnow() + lease, chat_ids)
        await uow.commit()
    return held


async def give_back(uow: UnitOfWork, owner: str | None) -> int:
    """The owner stops: the rows it still holds may be claimed at once; how many. With None,
    every sender's (the only instance, starting, takes back what its last run held)."""
    async with uow.write():
        released = await uow.outbox.give_back(owner)
        await uow.commit()
    return released


async def chat_moved(uow: UnitOfWork, old: int, new: int) -> None:
    """A group became a supergroup: its waiting notices and its orders follow it."""
    async with uow.write():
        await uow.outbox.move_chat(old, new)
        await uow.orders.move_dispatch_chat(old, new)
        await uow.commit()


async def prune(uow: UnitOfWork, older_than: timedelta) -> int:
    """Delete delivered and failed rows past the retention period, a batch at a time; how
    many went."""
    supersedable = {
        "order": [notices.kind_of(kind) for kind in notices.ORDER_MESSAGES],
        "courier": [notices.kind_of(RegistrationRequest)],
    }
    before = clock.utcnow() - older_than
    return await pruning.in_batches(
        uow, lambda limit: uow.outbox.prune(before, supersedable, limit)
    )
