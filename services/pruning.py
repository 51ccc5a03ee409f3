"""Deleting old rows a batch a transaction, with a pause between, so that no statement holds
the database (or, on SQLite, the event loop) for long."""

import asyncio
from collections.abc import Awaitable, Callable

from db.uow import UnitOfWork

BATCH = 2_000  # rows a transaction: a few milliseconds on SQLite
PAUSE_SECONDS = 0.01  # between batches: time for everything else


async def in_batches(uow: UnitOfWork, delete: Callable[[int], Awaitable[int]]) -> int:
    """Run `delete(limit)` (it deletes up to `limit` rows in `uow`'s transaction and says how
    many) until it deletes fewer; how many rows went in all."""
    pruned = 0
    while True:
        async with uow.write():
            deleted = await delete(BATCH)
            await uow.commit()
        pruned += deleted
        if deleted < BATCH:
            return pruned
        await asyncio.sleep(PAUSE_SECONDS)
