"""The outbox sender: every committed notice reaches its chat, in order, within Telegram's limits.

- A commit that wrote notices rings the doorbell (UnitOfWorkFactory.on_notices), so a row goes
  out at once; a poll every OUTBOX_POLL_SECONDS catches what other instances wrote and what
  became due again. A claim that took every row due does not claim again to find nothing:
  the sender waits for the next ring or poll.
- It claims chats, not rows: a chat's oldest due row and a few after it, leased to this sender
  (services.outbox.claim). Each chat gets a lane that sends its rows in order. Lanes run side
  by side, so a chat that is slow, down or flood-limited holds up nobody else. While this
  sender lives it renews its leases; when it dies they run out and another sender takes over.
- Outcomes are written in batches by the Recorder, only for rows still leased to this sender.

What Telegram says, and what becomes of the row:
- 429: tried again after `retry_after`, for that chat only (all chats pause when several chats
  are limited at once: then the limit is the bot's);
- 5xx, network error, timeout: tried again with exponential backoff and jitter, never given up;
- 403 on a courier's order: the courier is off shift and the order goes to the next courier
  (services.couriers.unreachable); 403 on anything else: refused, logged;
- the group became a supergroup: its rows and orders move to the new chat id, then go;
- any other 400, or a row this release cannot read or render: refused with the error, logged;
  the rows behind it go on.
"""

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.utils.i18n import I18n

from bot.limits import FloodLimiter
from bot.logs import log_failure
from db.uow import UnitOfWorkFactory
from handlers.i18n import speaking
from handlers.notices import Rendered, render
from services import clock, couriers, outbox
from services.notices import Notice, OrderAssigned, UnreadableNotice, supersedes
from services.outbox import Delivery, Outcome, Refused, RetryAt, Sent, Untried

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class SenderSettings:
    poll_seconds: float
    lease: timedelta
    lanes: int = 100  # chats being sent to at once
    per_chat: int = 10  # rows of a chat claimed at once


class Doorbell:
    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._rung.wait()
        self._rung.clear()


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        uow_factory: UnitOfWorkFactory,
        i18n: I18n,
        limiter: FloodLimiter,
        settings: SenderSettings,
    ) -> None:
        self.bot = bot
        self.uow_factory = uow_factory
        self.i18n = i18n
        self.settings = settings
        self.owner = uuid.uuid4().hex  # whose leases are whose, across instances
        self.doorbell = Doorbell()
        self._floods = FloodWatch(limiter)
        self._recorder = Recorder(uow_factory, self.owner, self._recorded)
        self._lanes: dict[int, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        # Rows may be due that no claim has taken: notices were committed since the last
        # claim began, or it left rows behind (busy chats, its limits, rows given back).
        self._due = True
        self._claiming = False
        uow_factory.on_notices(self.wake)

    def wake(self) -> None:
        """New notices were committed: claim them."""
        self._due = True
        self._idle.clear()
        self.doorbell.ring()

    def _recorded(self) -> None:
        """Outcomes are written and their chats free again: claim if rows may wait for that."""
        if self._due:
            self.doorbell.ring()
        self._note_if_idle()

    def _note_if_idle(self) -> None:
        """Idle is nothing to send now: no claim running or due, no lane, no outcome unwritten."""
        if self._due or self._claiming or self._lanes or self._recorder.busy:
            self._idle.clear()
        else:
            self._idle.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        helpers = [
            asyncio.create_task(self._recorder.run(), name="outbox-recorder"),
            asyncio.create_task(self._keep_leases(), name="outbox-leases"),
        ]
        try:
            while True:
                if await self._claim() == 0 or not self._due:
                    await self.doorbell.wait(self.settings.poll_seconds)
        finally:
            await _cancel(list(self._lanes.values()))
            await _cancel(helpers)
            await self._recorder.flush()
            await self._give_back()

    async def deliver_due(self) -> int:
        """Send everything due now and record it, without the loop; how many rows went.
        For tests and tools; not alongside `run`."""
        delivered = 0
        self._due = True
        while self._due and (claimed := await self._claim()):
            delivered += claimed
            await asyncio.gather(*self._lanes.values())
            await self._recorder.flush()
        return delivered

    async def settle(self, seconds: float) -> bool:
        """Wait up to `seconds` until nothing is left to send now; whether it came to that."""
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._idle.wait()
            return True
        return False

    async def _claim(self) -> int:
        room = self.settings.lanes - len(self._lanes)
        if room <= 0:
            self._due = True  # claim once a lane is free
            return 0
        busy = list(self._lanes)
        self._due, self._claiming = False, True
        self._note_if_idle()
        try:
            claimed = await outbox.claim(
                self.uow_factory(),
                self.owner,
                chats=room,
                per_chat=self.settings.per_chat,
                lease=self.settings.lease,
                busy=busy,
            )
        except Exception:
            self._due, claimed = True, []
            log_failure(log, "could not claim outbox rows; trying again shortly")
        finally:
            self._claiming = False
        chats = [list(rows) for _, rows in groupby(claimed, key=lambda row: row.chat_id)]
        for rows in chats:
            lane = asyncio.create_task(self._lane(rows), name=f"outbox-chat-{rows[0].chat_id}")
            self._lanes[rows[0].chat_id] = lane
        if busy or len(chats) == room or any(len(r) == self.settings.per_chat for r in chats):
            self._due = True  # it may have left rows behind
        self._note_if_idle()
        return len(claimed)

    async def _keep_leases(self) -> None:
        """Renew the leases of the chats being sent to well before they run out."""
        while True:
            await asyncio.sleep(self.settings.lease.total_seconds() / 3)
            if not self._lanes:
                continue
            try:
                chats = list(self._lanes)
                await outbox.renew(self.uow_factory(), self.owner, self.settings.lease, chats)
            except Exception:
                log_failure(log, "could not renew the outbox leases; trying again")

    async def _give_back(self) -> None:
        """On the way out: rows still leased here (a claim cut short) go to the next sender
        now, not when their lease runs out."""
        try:
            if released := await outbox.give_back(self.uow_factory(), self.owner):
                log.info("gave back %s outbox rows on stopping", released)
        except Exception:
            log_failure(log, "could not give back the outbox leases; they run out by themselves")

    async def _lane(self, deliveries: Sequence[Delivery]) -> None:
        """One chat's rows, in order; the rest wait behind a row that must be tried again."""
        chat_id = deliveries[0].chat_id
        done = 0
        try:
            for delivery in deliveries:
                try:
                    outcome = await self._attempt(delivery)
                except Exception as error:  # the database, most likely: the row waits a while
                    delay = _backoff(delivery.attempts)
                    log_failure(log, "%s failed; trying again in %.1f s", describe(delivery), delay)
                    outcome = RetryAt(delivery.id, _after(delay), repr(error))
                done += 1
                if outcome is None:
                    continue
                self._record(outcome)
                if isinstance(outcome, RetryAt | Untried):
                    break
        finally:
            for untried in deliveries[done:]:
                self._record(Untried(untried.id))
            self._lanes.pop(chat_id, None)

    def _record(self, outcome: Outcome) -> None:
        """Hand an outcome to the recorder; a row given back untried must be claimed again."""
        self._recorder.add(outcome)
        if isinstance(outcome, Untried):
            self._due = True

    async def _attempt(self, delivery: Delivery) -> Outcome | None:
        """Send one row; None when a service has recorded what became of it."""
        where = describe(delivery)
        notice = delivery.notice
        if isinstance(notice, UnreadableNotice):
            log.error("%s refused: %s", where, notice)
            return Refused(delivery.id, str(notice))
        try:
            rendered = self._render(delivery.locale, notice)
        except Exception as error:
            log.exception("%s refused: it cannot be rendered", where)
            return Refused(delivery.id, f"cannot be rendered: {error!r}")
        try:
            message_id = await self._send(delivery, rendered)
        except TelegramAPIError as error:
            return await self._refused_by_telegram(delivery, error)
        log.info("%s delivered", where)
        return Sent(delivery.id, message_id)

    def _render(self, locale: str | None, notice: Notice) -> Rendered:
        with speaking(self.i18n, locale):
            return render(notice)

    async def _refused_by_telegram(
        self, delivery: Delivery, error: TelegramAPIError
    ) -> Outcome | None:
        where = describe(delivery)
        if isinstance(error, TelegramRetryAfter):
            log.warning("%s: flood limit, waiting %s s", where, error.retry_after)
            await self._floods.saw(delivery.chat_id, error.retry_after)
            return RetryAt(delivery.id, _after(error.retry_after), error.message)
        if isinstance(error, TelegramMigrateToChat):
            log.info("%s: the group is now %s", where, error.migrate_to_chat_id)
            await outbox.chat_moved(self.uow_factory(), delivery.chat_id, error.migrate_to_chat_id)
            return Untried(delivery.id)
        if isinstance(error, TelegramForbiddenError) and isinstance(delivery.notice, OrderAssigned):
            log.warning("%s: the courier cannot be reached (%s)", where, error.message)
            await couriers.unreachable(
                self.uow_factory(),
                delivery.id,
                self.owner,
                delivery.chat_id,
                delivery.notice.order_id,
                error.message,
            )
            return None
        if isinstance(
            error, TelegramServerError | TelegramNetworkError | TelegramUnauthorizedError
        ):
            delay = _backoff(delivery.attempts)
            log.warning("%s: Telegram unavailable (%s); again in %.1f s", where, error, delay)
            return RetryAt(delivery.id, _after(delay), str(error))
        log.warning("%s refused: %s", where, error)
        return Refused(delivery.id, str(error))

    async def _send(self, delivery: Delivery, rendered: Rendered) -> int | None:
        assert not isinstance(delivery.notice, UnreadableNotice)
        if supersedes(delivery.notice) is not None:
            # The messages it replaces may have gone out just now, from this very lane.
            await asyncio.shield(self._recorder.flush())
        for message_id in await outbox.superseded(self.uow_factory(), delivery):
            await self._supersede(delivery.chat_id, message_id, rendered)
        if rendered.text is None:
            return None
        message = await self.bot.send_message(
            delivery.chat_id, rendered.text, reply_markup=rendered.keyboard
        )
        return message.message_id

    async def _supersede(self, chat_id: int, message_id: int, rendered: Rendered) -> None:
        """Best effort: the message may be gone or too old to edit."""
        try:
            if rendered.superseded_text is None:
                await self.bot.edit_message_reply_markup(
                    chat_id=chat_id, message_id=message_id, reply_markup=None
                )
            else:
                await self.bot.edit_message_text(
                    rendered.superseded_text, chat_id=chat_id, message_id=message_id
                )
        except TelegramBadRequest as error:
            log.info("message %s in chat %s not edited: %s", message_id, chat_id, error.message)


class Recorder:
    """Writes the outcomes of deliveries in batches, then says so: their chats are free."""

    def __init__(
        self, uow_factory: UnitOfWorkFactory, owner: str, flushed: Callable[[], None]
    ) -> None:
        self.uow_factory = uow_factory
        self.owner = owner
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
                await outbox.record(self.uow_factory(), self.owner, batch)
            except BaseException as error:
                self._outcomes[:0] = batch
                self._arrived.set()
                if not isinstance(error, Exception):
                    raise
                log_failure(log, "could not record %s outbox outcomes; retrying", len(batch))
                return False
        self.flushed()
        return True


class FloodWatch:
    """429s from several chats at once mean the bot as a whole is limited: pause everything."""

    WINDOW_SECONDS = 1.0
    CHATS = 3

    def __init__(self, limiter: FloodLimiter) -> None:
        self.limiter = limiter
        self._recent: deque[tuple[float, int]] = deque()

    async def saw(self, chat_id: int, retry_after: float) -> None:
        now = time.monotonic()
        self._recent.append((now, chat_id))
        while self._recent[0][0] < now - self.WINDOW_SECONDS:
            self._recent.popleft()
        if len({chat for _, chat in self._recent}) >= self.CHATS:
            log.warning("flood limit on the whole bot: pausing all chats for %s s", retry_after)
            await self.limiter.pause(retry_after)


def describe(delivery: Delivery) -> str:
    """The row in a log line: its id, notice, order and chat."""
    kind = getattr(delivery.notice, "kind", "unreadable")
    order = getattr(delivery.notice, "order_id", None)
    about = f" of order {order}" if order is not None else ""
    return f"outbox {delivery.id} ({kind}{about}) to chat {delivery.chat_id}"


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _backoff(attempts: int) -> float:
    """1 s, 2 s, 4 s… give or take a quarter so chats do not retry in step; a minute at most."""
    return min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 16) * random.uniform(0.75, 1.25))


def _after(seconds: float) -> datetime:
    return clock.utcnow() + timedelta(seconds=seconds)
