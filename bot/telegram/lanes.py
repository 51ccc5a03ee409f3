"""What the outbox sender and the inbox worker share: each claims chats from a leased queue
(db.repositories.leases), runs a lane per chat, and writes what became of each row in batches.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import suppress
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from bot.logs import log_failure
from services import clock

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 60.0
Outcome = TypeVar("Outcome")
# In a sender's lane: whether the chat's lease still surely outlasts a send. A message that
# waited for its flood-limit slot is checked again just before it goes (bot.telegram.requests).
UNDER_LEASE: ContextVar[Callable[[], bool] | None] = ContextVar("under_lease", default=None)


class LeaseLost(Exception):
    """A lane's lease could not be renewed in time: it sends nothing more."""


class Doorbell:
    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, seconds: float) -> bool:
        """Until rung or `seconds` pass; whether it was rung."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._rung.wait()
        rung = self._rung.is_set()
        self._rung.clear()
        return rung


class Recorder(Generic[Outcome]):
    """Writes outcomes in batches (`write`), then says so (`flushed`): their chats are free."""

    def __init__(
        self,
        name: str,
        write: Callable[[Sequence[Outcome]], Awaitable[None]],
        flushed: Callable[[], None],
    ) -> None:
        self.name = name
        self.write = write
        self.flushed = flushed
        self._outcomes: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._writing = asyncio.Lock()

    @property
    def busy(self) -> bool:
        """Outcomes wait to be written, or are being written."""
        return bool(self._outcomes) or self._writing.locked()

    def add(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._arrived.set()

    async def run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if not await self.flush():
                await asyncio.sleep(1.0)  # the database is away: keep the outcomes, try again

    async def flush(self) -> bool:
        """Write every outcome added so far; when it returns True, they are in the database.
        Outcomes that could not be written, even on cancellation, are kept for the next try."""
        async with self._writing:
            batch, self._outcomes = self._outcomes, []
            if not batch:
                return True
            try:
                await self.write(batch)
            except BaseException as error:
                self._outcomes[:0] = batch
                self._arrived.set()
                if not isinstance(error, Exception):
                    raise
                log_failure(log, "could not record %s %s outcomes; retrying", len(batch), self.name)
                return False
        self.flushed()
        return True


class Leases:
    """How long the leases on each chat a worker holds will surely last, as far as it knows:
    from the moment it asked for them (a claim, a renewal) that committed.

    A lane starts a row only while its chat's lease outlasts the row's work by `margin`
    (`safe`): a lease that could not be renewed, in an outage, is never acted on.
    """

    def __init__(self, length: timedelta, margin: float) -> None:
        self.length = length.total_seconds()
        self.margin = margin
        self._until: dict[int, float] = {}

    def asked(self) -> float:
        """Call before asking for leases; pass the result to `granted` once they are."""
        return time.monotonic()

    def granted(self, asked_at: float, chat_ids: Collection[int]) -> None:
        for chat_id in chat_ids:
            self._until[chat_id] = asked_at + self.length

    def dropped(self, chat_id: int) -> None:
        self._until.pop(chat_id, None)

    def safe(self, chat_id: int) -> bool:
        return time.monotonic() + self.margin < self._until.get(chat_id, 0.0)


async def keep_leases(
    leases: Leases,
    chats: Callable[[], list[int]],
    renew: Callable[[list[int]], Awaitable[Collection[int]]],
    what: str,
) -> None:
    """Renew the leases of the chats being worked on, every third of a lease. A chat whose
    rows another worker holds now (its lease ran out and was taken) is not renewed: its
    lane stops at its next row."""
    while True:
        await asyncio.sleep(leases.length / 3)
        if not (held := chats()):
            continue
        asked = leases.asked()
        try:
            renewed = await renew(held)
        except Exception:
            log_failure(log, "could not renew the %s leases; trying again", what)
        else:
            leases.granted(asked, renewed)
            for chat_id in set(held) - set(renewed):
                leases.dropped(chat_id)


async def claim_until_cancelled(
    claim: Callable[[bool], Awaitable[int]],
    due: Callable[[], bool],
    doorbell: Doorbell,
    poll_seconds: float,
    waiting: Callable[[], None] = lambda: None,
) -> None:
    """Claim while rows may be due; else call `waiting` and wait for the doorbell or the
    poll. `claim(polled)` is told when nothing rang: then it reads before it writes."""
    rung = True
    while True:
        if await claim(not rung) == 0 or not due():
            waiting()
            rung = await doorbell.wait(poll_seconds)
        else:
            rung = True


async def close(
    lanes: Collection["asyncio.Task[None]"],
    helpers: Collection["asyncio.Task[None]"],
    recorder: "Recorder[Any]",
    give_back: Callable[[], Awaitable[None]],
) -> None:
    """On the way out: the lanes and helpers stop, what they did is written, and the leases
    left go to the next worker now."""
    await cancel(lanes)
    await cancel(helpers)
    await recorder.flush()
    await give_back()


async def cancel(tasks: Collection["asyncio.Task[None]"]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def backoff(attempts: int) -> float:
    """1 s, 2 s, 4 s… give or take a quarter so chats do not retry in step; a minute at most."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 16) * random.uniform(0.75, 1.25))


def after(seconds: float) -> datetime:
    return clock.utcnow() + timedelta(seconds=seconds)
