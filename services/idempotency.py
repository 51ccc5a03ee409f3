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
from services import clock, pruning
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
    uow: UnitOfWork,
    client: str,
    key: str,
    request_hash: str,
    lease: timedelta,
    *,
    resumable: bool = False,
) -> Running | Replay:
    """Take the key for this request, or say what the first request with it got.

    A first request whose work committed and whose answer was lost (its process died) is run
    again only if it is `resumable`: run again, it finds its work done and answers from it
    (a posted order). Any other is refused with IDEMPOTENCY_ANSWER_LOST: never done twice.
    """
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
        committed = not expired and row.committed_at is not None
        if committed and not resumable:
            raise Conflict(ErrorCode.IDEMPOTENCY_ANSWER_LOST)
        # Expired, or its request died before its work committed, or a resumable one after.
        await uow.idempotency.restart(row.id, request_hash, now, until, keep_committed=committed)
        await uow.commit()
    return Running(row.id, until)


def stamp(running: Running) -> Stamp:
    """Written with the request's work: the key's request did its work."""

    async def mark(uow: UnitOfWork) -> bool:
        return await uow.idempotency.mark_committed(running.row_id, running.until, clock.utcnow())

    return Stamp(mark)


async def finish(uow: UnitOfWork, running: Running, answer: tuple[int, str] | None) -> None:
    """Keep the (status, body) answer to give again. Without one to keep (a conflict, a
    server error), the key is freed for a retry to run anew, unless the request's work
    committed: then a retry is refused (`begin`)."""
    async with uow.write():
        if answer is not None:
            await uow.idempotency.answer(running.row_id, running.until, *answer)
        else:
            await uow.idempotency.forget(running.row_id, running.until)
        await uow.commit()


async def prune(uow: UnitOfWork) -> int:
    """Delete the keys past their KEY_HOURS; how many went."""
    before = clock.utcnow() - timedelta(hours=KEY_HOURS)
    return await pruning.in_batches(uow, lambda limit: uow.idempotency.prune(before, limit))
