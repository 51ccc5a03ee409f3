"""Where the front doors (the webhook, the polling loop) put the updates they take.

A live location's edit goes to the position writer; every other update to the inbox
(bot.telegram.inbox). Either way the update is kept before Telegram is told it was taken.

The writer keeps each courier's latest position and writes whatever has come meanwhile in
one short transaction, one at a time: with a thousand couriers sharing at once (hundreds of
edits a second) that is a few writes a second, not hundreds, and none of them waits behind a
courier's other updates in the inbox, nor holds up dispatching for longer than a batch.
"""

import asyncio
import logging
from collections.abc import Sequence

from aiogram import Dispatcher
from aiogram.types import Update

from bot.metrics import Metrics
from bot.telegram.inbox import InboxWorker, incoming
from db.uow import UnitOfWorkFactory
from handlers.errors import transient
from handlers.location import fix_of
from services import positions
from services.positions import Fix

log = logging.getLogger(__name__)
# How long the first position of a batch waits for others to join it: what a live location
# waits before Telegram hears it was taken.
GATHER_SECONDS = 0.05


def wanted_updates(dispatcher: Dispatcher) -> list[str]:
    """What Telegram is asked for: what the handlers take, and live locations' edits."""
    return sorted({*dispatcher.resolve_used_update_types(), "edited_message"})


def position_of(update: Update) -> Fix | None:
    """The position a live location's edit carries; None for any other update."""
    if update.edited_message is None:
        return None
    return fix_of(update.edited_message, update.update_id)


class _Batch:
    """Positions waiting to be written together, and the write that takes them."""

    def __init__(self) -> None:
        self.fixes: list[Fix] = []
        self.written: asyncio.Task[None] | None = None


class PositionWriter:
    """Writes positions in batches: the first position of a batch waits `gather_seconds` for
    others to join it (on SQLite a write does not let other tasks run, so nothing could join
    one under way), then the batch is written once the one before is done."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        metrics: Metrics | None = None,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.uow_factory = uow_factory
        self.metrics = metrics
        self.gather_seconds = gather_seconds
        self._next = _Batch()
        self._turn = asyncio.Lock()

    async def put(self, fixes: Sequence[Fix]) -> None:
        """Returns once these positions are written; raises what stopped the write. A caller
        that gives up waiting (a request cut short) does not stop it."""
        batch = self._next
        batch.fixes.extend(fixes)
        if batch.written is None:
            batch.written = asyncio.create_task(self._write(batch), name="positions")
            # Its error is every caller's; with none left waiting, it is read here.
            batch.written.add_done_callback(lambda task: task.cancelled() or task.exception())
        await asyncio.shield(batch.written)

    async def _write(self, batch: _Batch) -> None:
        await asyncio.sleep(self.gather_seconds)
        async with self._turn:
            self._next = _Batch()  # who comes now joins the next batch
            try:
                await positions.record(self.uow_factory(), batch.fixes)
            except Exception as error:
                if transient(error) or len(batch.fixes) == 1:
                    self._count(len(batch.fixes), written=False)
                    raise
                # One position no database takes must not sink the others: each alone.
                await self._one_by_one(batch.fixes)
                return
            self._count(len(batch.fixes), written=True)

    async def _one_by_one(self, fixes: Sequence[Fix]) -> None:
        """Write each position in its own transaction; one that cannot be written is logged
        and let go (as an update that can never be stored is); raises if the database is
        away."""
        for fix in fixes:
            try:
                await positions.record(self.uow_factory(), [fix])
            except Exception as error:
                if transient(error):
                    raise
                log.error("a position of user %s cannot be written: %r", fix.telegram_id, error)
                self._count(1, written=False)
            else:
                self._count(1, written=True)

    def _count(self, fixes: int, *, written: bool) -> None:
        if self.metrics is not None:
            self.metrics.count_positions(fixes, written)


class Intake:
    def __init__(self, inbox: InboxWorker, writer: PositionWriter) -> None:
        self.inbox = inbox
        self.writer = writer

    async def keep(self, updates: Sequence[Update]) -> None:
        """Keep these updates, each where it belongs; raises when some could not be kept
        (Telegram must then send them again: a copy of what was kept changes nothing)."""
        fixes, others = [], []
        for update in updates:
            if (fix := position_of(update)) is not None:
                fixes.append(fix)
            elif update.edited_message is None:
                others.append(incoming(update))
            # Any other edit (of a text, in a group) is asked for only with live locations'
            # and no handler wants it: taken, and let go.
        if others:
            await self.inbox.store(others)
        if fixes:
            await self.writer.put(fixes)
