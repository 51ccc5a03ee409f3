"""The inbox of Telegram updates: stored before Telegram is told they were taken, handled once.

The bot's front doors (the webhook, the polling loop) store each update; a worker claims each
chat's updates in the order they were stored and hands them to the handlers. An update's row
is marked done in the transaction that commits its effects (`done_stamp`), or after its
handler, when it had none: a copy of a done update, or a replay, changes nothing.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from db.models import InboxState
from db.uow import Stamp, UnitOfWork
from services import clock, pruning


@dataclass(frozen=True, slots=True)
class Incoming:
    """An update as it came: its id, whose turn it takes (its chat), and its JSON."""

    update_id: int
    chat_id: int
    payload: str


@dataclass(frozen=True, slots=True)
class Stored:
    """An update a worker holds the lease on."""

    id: int
    update_id: int
    chat_id: int
    payload: str
    attempts: int  # attempts before this one


@dataclass(frozen=True, slots=True)
class Handled:
    row_id: int


@dataclass(frozen=True, slots=True)
class Failed:
    """Its handler failed for a reason of its own: it would fail again, so it is not retried."""

    row_id: int
    error: str


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Something it needs was away (the database, Redis): handled again from `at`."""

    row_id: int
    at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class Untried:
    """Not handled: an earlier update of its chat must go first, or the worker stopped."""

    row_id: int


Outcome = Handled | Failed | RetryAt | Untried


async def store(uow: UnitOfWork, bot_id: int, updates: Sequence[Incoming]) -> int:
    """Keep these updates, once each; how many were new."""
    now = clock.utcnow()
    rows = [
        {
            "bot_id": bot_id,
            "update_id": update.update_id,
            "chat_id": update.chat_id,
            "payload": update.payload,
            "received_at": now,
            "state": InboxState.PENDING,
            "attempts": 0,
        }
        for update in updates
    ]
    async with uow.write():
        new = await uow.inbox.store(rows)
        await uow.commit()
    return new


async def any_due(uow: UnitOfWork) -> bool:
    """Whether an update waits that could be claimed now (a read: no write lock taken)."""
    async with uow.read():
        return await uow.inbox.queue.any_due(clock.utcnow())


async def claim(
    uow: UnitOfWork,
    owner: str,
    *,
    chats: int,
    per_chat: int,
    lease: timedelta,
    busy: Collection[int] = (),
) -> list[Stored]:
    """Lease to `owner` the next updates of up to `chats` chats not in `busy`, in order
    within each chat."""
    now = clock.utcnow()
    async with uow.write():
        rows = await uow.inbox.queue.claim(
            now, now + lease, owner, chats=chats, per_chat=per_chat, busy=busy
        )
        await uow.commit()
    return [Stored(r.id, r.update_id, r.chat_id, r.payload, r.attempts) for r in rows]


def done_stamp(row_id: int, owner: str) -> Stamp:
    """The mark an update's effects commit with: its row is done, while `owner` holds it."""

    async def mark(uow: UnitOfWork) -> bool:
        return await uow.inbox.mark_done(row_id, owner, clock.utcnow())

    return Stamp(mark)


async def record(uow: UnitOfWork, owner: str, outcomes: Sequence[Outcome]) -> None:
    """Write what became of these updates; rows another worker has taken since are left."""
    async with uow.write():
        await uow.inbox.record(
            [o.row_id for o in outcomes if isinstance(o, Handled)],
            [(o.row_id, o.error) for o in outcomes if isinstance(o, Failed)],
            [(o.row_id, o.at, o.error) for o in outcomes if isinstance(o, RetryAt)],
            owner,
            clock.utcnow(),
        )
        if untried := [o.row_id for o in outcomes if isinstance(o, Untried)]:
            await uow.inbox.queue.release(owner, untried)
        await uow.commit()


async def renew(
    uow: UnitOfWork, owner: str, lease: timedelta, chat_ids: Collection[int]
) -> set[int]:
    """Keep the owner's leases on the updates of these chats for another `lease`; the chats
    whose leases it still held."""
    async with uow.write():
        held = await uow.inbox.queue.renew(owner, clock.utcnow() + lease, chat_ids)
        await uow.commit()
    return held


async def give_back(uow: UnitOfWork, owner: str | None) -> int:
    """End the owner's leases (everyone's, with None: the only instance, starting), those of
    updates done whose handler had not finished too; how many."""
    async with uow.write():
        released = await uow.inbox.queue.release(owner, any_state=True)
        await uow.commit()
    return released


async def waiting(uow: UnitOfWork) -> tuple[int, datetime | None]:
    """How many updates wait to be handled, and since when the oldest."""
    async with uow.read():
        return await uow.inbox.waiting()


async def prune(uow: UnitOfWork, older_than: timedelta) -> int:
    """Delete handled updates past the retention period, a batch at a time; how many went."""
    before = clock.utcnow() - older_than
    return await pruning.in_batches(uow, lambda limit: uow.inbox.prune(before, limit))
