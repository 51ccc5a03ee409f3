"""Idempotency keys for shops' requests, with Stripe's meaning.

A request sent again with the same `Idempotency-Key` and the same body gets the first one's
answer, and does nothing again; with another body it is refused; while the first still runs
it gets a conflict. A key is its shop's (`client`) and lasts KEY_HOURS. The mark that the
request's work committed is written in that very transaction (`stamp`), so a request whose
process died after its work is never done twice: run again, it finds its work done.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from db.uow import Stamp, UnitOfWork
from services import clock
from services.errors import Conflict, ErrorCode, InvalidInput

KEY_HOURS = 24
KEY_MAX = 255


@dataclass(frozen=True, slots=True)
class Running:
    """This request holds the key until `until`."""

    row_id: int
    until: datetime


@dataclass(frozen=True, slots=True)
class Replay:
    """The answer the first request with the key got."""

    status: int
    body: str


def valid_key(key: str) -> bool:
    """1 to 255 printable ASCII characters."""
    return 0 < len(key) <= KEY_MAX and key.isascii() and key.isprintable()


async def begin(
    uow: UnitOfWork, client: str, key: str, request_hash: str, lease: timedelta
) -> Running | Replay:
    """Take the key for this request, or say what the first request with it got."""
    now = clock.utcnow()
    until = now + lease
    async with uow.write():
        row_id = await uow.idempotency.insert(client, key, request_hash, now, until)
        if row_id is not None:
            await uow.commit()
            return Running(row_id, until)
        row = await uow.idempotency.find(client, key)
        assert row is not None
        expired = row.created_at < now - timedelta(hours=KEY_HOURS)
        if not expired and row.request_hash != request_hash:
            raise InvalidInput(ErrorCode.IDEMPOTENCY_KEY_REUSED)
        if not expired and row.status is not None and row.body is not None:
            return Replay(row.status, row.body)
        if not expired and row.locked_until is not None and row.locked_until > now:
            raise Conflict(ErrorCode.IDEMPOTENCY_KEY_BUSY)
        # Expired, or its request died (its work may have committed: run again, the request
        # finds it done, as a copy of a posted order finds the order).
        await uow.idempotency.restart(row.id, request_hash, now, until)
        await uow.commit()
    return Running(row.id, until)


def stamp(running: Running) -> Stamp:
    """Written with the request's work: the key's request did its work."""

    async def mark(uow: UnitOfWork) -> bool:
        return await uow.idempotency.mark_committed(running.row_id, running.until, clock.utcnow())

    return Stamp(mark)


async def finish(uow: UnitOfWork, running: Running, status: int, body: str, *, keep: bool) -> None:
    """Keep the answer to give again; or, when it is not to be kept (`keep` False) and the
    request committed nothing, free the key for a retry to run anew."""
    async with uow.write():
        if keep:
            await uow.idempotency.answer(running.row_id, running.until, status, body)
        else:
            await uow.idempotency.forget(running.row_id, running.until)
            await uow.idempotency.answer(running.row_id, running.until, status, body)
        await uow.commit()


async def prune(uow: UnitOfWork) -> int:
    """Delete the keys past their KEY_HOURS; how many went."""
    async with uow.write():
        pruned = await uow.idempotency.prune(clock.utcnow() - timedelta(hours=KEY_HOURS))
        await uow.commit()
    return pruned
