"""The inbox worker: hands stored updates (services.inbox) to the handlers, each chat's in the
order they came, exactly once in effect.

- Storing an update rings the doorbell, so it is handled at once; a poll every
  INBOX_POLL_SECONDS catches what other instances stored, and what is due again.
- It claims chats, not updates: a chat's oldest waiting update and those after it, leased to
  this worker. Each chat gets a lane that feeds its updates to the Dispatcher in order; lanes
  run side by side. While this worker lives it renews its leases; when it dies they run out
  and another worker (the next instance to start, at the latest) takes over.
- The first transaction that commits an update's effects marks it done (services.inbox
  .done_stamp); an update with no effects is marked done after its handler. A copy of a done
  update is never handled: its effects are never doubled.

What becomes of an update whose handler raised:
- the database or Redis was away (handlers.errors.transient): handled again after a backoff,
  the updates of its chat behind it;
- done already by a copy of it (AlreadyDone): nothing;
- anything else is a bug: logged, the update failed for good, the chat's next updates go on.
"""

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.types import Update

from bot.logs import log_failure
from bot.telegram.lanes import (
    Doorbell,
    Leases,
    Recorder,
    after,
    backoff,
    claim_until_cancelled,
    close,
    keep_leases,
)
from db.uow import AlreadyDone, UnitOfWorkFactory
from handlers.errors import transient
from services import inbox
from services.inbox import Failed, Handled, Incoming, Outcome, RetryAt, Stored, Untried

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboxSettings:
    poll_seconds: float = 1.0
    lease: timedelta = timedelta(seconds=60)
    lanes: int = 100  # chats handled at once
    per_chat: int = 20  # updates of a chat claimed at once

    @property
    def handle_seconds(self) -> float:
        """The longest an update's handling may take: a lane starts one only while its lease
        outlasts it."""
        return self.lease.total_seconds() / 3


def incoming(update: Update) -> Incoming:
    """The update as the inbox keeps it: whose turn it takes is its chat's, or its user's.
    Its JSON escapes what UTF-8 cannot hold (a lone surrogate), as Telegram's does."""
    context = UserContextMiddleware.resolve_event_context(event=update)
    chat_id = context.chat.id if context.chat else context.user_id or 0
    payload = json.dumps(update.model_dump(mode="json", exclude_unset=True, by_alias=True))
    return Incoming(update.update_id, chat_id, payload)


def read_update(payload: str | bytes, bot: Bot) -> Update:
    """An update from its JSON; ValueError (or pydantic's ValidationError) if it is not one."""
    try:
        data = json.loads(payload)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return Update.model_validate(data, context={"bot": bot})


class Taken:
    """An update's effects found it done elsewhere: the chat is another worker's now."""


class InboxWorker:
    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        uow_factory: UnitOfWorkFactory,
        settings: InboxSettings,
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.uow_factory = uow_factory
        self.settings = settings
        self.owner = uuid.uuid4().hex
        self.doorbell = Doorbell()
        self._recorder: Recorder[Outcome] = Recorder("inbox", self._write, self._recorded)
        self._leases = Leases(settings.lease, margin=settings.handle_seconds)
        self._lanes: dict[int, asyncio.Task[None]] = {}
        self._due = True  # updates may wait that no claim has taken
        self._stopping = False
        self._idle = asyncio.Event()

    def wake(self) -> None:
        """Updates were stored: claim them."""
        self._due = True
        self._idle.clear()
        self.doorbell.ring()

    async def store(self, updates: Sequence[Incoming]) -> int:
        """Keep these updates, then handle them; how many were new. Raises when they could not
        be kept: Telegram must then keep them."""
        new = await inbox.store(self.uow_factory(), self.bot.id, updates)
        self.wake()
        return new

    async def run(self) -> None:
        """Handle updates until cancelled."""
        helpers = [
            asyncio.create_task(self._recorder.run(), name="inbox-recorder"),
            asyncio.create_task(self._keep_leases(), name="inbox-leases"),
        ]
        self._due, self._stopping = True, False
        self._idle.clear()
        try:
            await claim_until_cancelled(
                self._claim,
                lambda: self._due,
                self.doorbell,
                self.settings.poll_seconds,
                waiting=self._note_if_idle,
            )
        finally:
            await close(list(self._lanes.values()), helpers, self._recorder, self._give_back)

    async def handle_due(self) -> int:
        """Handle every update due now and record it, without the loop; how many. For tests
        and tools; not alongside `run`."""
        handled = 0
        self._due = True
        while self._due and (claimed := await self._claim(polled=False)):
            handled += claimed
            await asyncio.gather(*self._lanes.values())
            await self._recorder.flush()
        return handled

    async def stop(self, seconds: float) -> int:
        """Take no new update; wait up to `seconds` for those being handled (each lane stops
        after its current one). How many lanes were still busy."""
        self._stopping = True
        lanes = list(self._lanes.values())
        if not lanes:
            return 0
        _, busy = await asyncio.wait(lanes, timeout=max(0.0, seconds))
        return len(busy)

    async def settle(self, seconds: float) -> bool:
        """Wait up to `seconds` until no update waits here; whether it came to that. For tests
        and tools."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _note_if_idle(self) -> None:
        if self._due or self._lanes or self._recorder.busy:
            self._idle.clear()
        else:
            self._idle.set()

    def _recorded(self) -> None:
        if self._due:
            self.doorbell.ring()
        self._note_if_idle()

    async def _write(self, outcomes: Sequence[Outcome]) -> None:
        await inbox.record(self.uow_factory(), self.owner, outcomes)

    async def _claim(self, polled: bool) -> int:
        """Lease the updates due now and start their lanes; how many. On a poll it looks with
        a read first: an idle worker never takes the write lock."""
        room = self.settings.lanes - len(self._lanes)
        if room <= 0 or self._stopping:
            self._due = not self._stopping
            return 0
        busy = list(self._lanes)
        self._due = False
        asked = self._leases.asked()
        try:
            if not await self._recorder.flush():
                raise ConnectionError("the outcomes could not be written")
            if polled and not busy and not await inbox.any_due(self.uow_factory()):
                return 0
            claimed = await inbox.claim(
                self.uow_factory(),
                self.owner,
                chats=room,
                per_chat=self.settings.per_chat,
                lease=self.settings.lease,
                busy=busy,
            )
        except Exception:
            self._due = True
            log_failure(log, "could not claim updates from the inbox; trying again shortly")
            return 0
        chats = [list(rows) for _, rows in groupby(claimed, key=lambda row: row.chat_id)]
        self._leases.granted(asked, [rows[0].chat_id for rows in chats])
        for rows in chats:
            lane = asyncio.create_task(self._lane(rows), name=f"inbox-chat-{rows[0].chat_id}")
            self._lanes[rows[0].chat_id] = lane
        if busy or len(chats) == room or any(len(r) == self.settings.per_chat for r in chats):
            self._due = True  # it may have left updates behind
        return len(claimed)

    async def _lane(self, rows: Sequence[Stored]) -> None:
        """One chat's updates, in order; the rest wait behind one that must be tried again."""
        chat_id = rows[0].chat_id
        done = 0
        try:
            for row in rows:
                if self._stopping or not self._leases.safe(chat_id):
                    break
                outcome = await self._handle(row)
                done += 1
                if isinstance(outcome, Handled | Failed | RetryAt):
                    self._recorder.add(outcome)
                if isinstance(outcome, RetryAt | Taken):
                    break
        finally:
            for untried in rows[done:]:
                self._recorder.add(Untried(untried.id))
                self._due = True
            self._lanes.pop(chat_id, None)
            self._leases.dropped(chat_id)

    async def _handle(self, row: Stored) -> Outcome | Taken:
        """Feed one update to the handlers; what became of it."""
        try:
            update = read_update(row.payload, self.bot)
        except ValueError as error:
            log.error("update %s cannot be read: %s", row.update_id, error)
            return Failed(row.id, f"cannot be read: {error}")
        stamp = inbox.done_stamp(row.id, self.owner)
        try:
            await self.dispatcher.feed_update(self.bot, update, stamp=stamp)
        except AlreadyDone:
            # Its row is done, or another worker holds it now: this lane's lease is gone.
            return Taken()
        except Exception as error:
            if not transient(error):
                log.exception("update %s failed", row.update_id)
                return Handled(row.id) if stamp.stamped else Failed(row.id, repr(error))
            if stamp.stamped:
                return Handled(row.id)  # its effects are in: what failed after is not redone
            delay = backoff(row.attempts)
            log_failure(log, "update %s: handled again in %.1f s", row.update_id, delay)
            return RetryAt(row.id, after(delay), repr(error))
        # Done, by its effects' transaction or now: recording it ends the lease on the chat.
        return Handled(row.id)

    async def _keep_leases(self) -> None:
        async def renew(chats: list[int]) -> set[int]:
            return await inbox.renew(self.uow_factory(), self.owner, self.settings.lease, chats)

        await keep_leases(self._leases, lambda: list(self._lanes), renew, "inbox")

    async def _give_back(self) -> None:
        try:
            if released := await inbox.give_back(self.uow_factory(), self.owner):
                log.info(
                    "gave back %s updates on stopping; the next instance handles them", released
                )
        except Exception:
            log_failure(log, "could not give back the inbox leases; they run out by themselves")
