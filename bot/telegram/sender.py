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
import time
import uuid
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

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

from bot.logs import log_failure
from bot.telegram.lanes import (
    UNDER_LEASE,
    Doorbell,
    LeaseLost,
    Leases,
    Recorder,
    after,
    backoff,
    claim_until_cancelled,
    close,
    keep_leases,
)
from bot.telegram.limits import FloodLimiter
from db.uow import UnitOfWorkFactory
from handlers.i18n import speaking
from handlers.notices import UTC_ZONE, Rendered, render
from services import couriers, outbox
from services.notices import Notice, OrderAssigned, OrderOffered, UnreadableNotice, supersedes
from services.outbox import Delivery, Outcome, Refused, RetryAt, Sent, Untried

log = logging.getLogger(__name__)
MESSAGE_MAX = 4096  # Telegram's limit, in UTF-16 code units
MERGE_SEPARATOR = "\n\n"
MERGE_SEPARATOR_SIZE = 2


@dataclass(frozen=True, slots=True)
class SenderSettings:
    poll_seconds: float
    lease: timedelta
    zone: ZoneInfo = UTC_ZONE  # the business's, for the times notices tell
    lanes: int = 100  # chats being sent to at once
    per_chat: int = 30  # rows of a chat claimed at once (and merged, when they can be)

    @property
    def send_seconds(self) -> float:
        """The longest a send may take (Telegram's answer, the flood limits' wait): a lane
        starts one only while its lease outlasts it, so no row is sent on a lease run out."""
        return self.lease.total_seconds() / 3


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
        self._recorder: Recorder[Outcome] = Recorder("outbox", self._write, self._recorded)
        self._leases = Leases(settings.lease, margin=settings.send_seconds)
        self._lanes: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._idle = asyncio.Event()
        # Rows may be due that no claim has taken: notices were committed since the last
        # claim began, or it left rows behind (busy chats, its limits, rows given back).
        self._due = True
        self._claiming = False
        uow_factory.on_notices(self.wake)

    async def _write(self, outcomes: Sequence[Outcome]) -> None:
        await outbox.record(self.uow_factory(), self.owner, outcomes)

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
            await claim_until_cancelled(
                self._claim, lambda: self._due, self.doorbell, self.settings.poll_seconds
            )
        finally:
            await close(list(self._lanes.values()), helpers, self._recorder, self._give_back)

    async def stop(self) -> None:
        """Start no new send; let the sends in flight finish, so their real outcomes are
        recorded (`run`, once cancelled, writes them and gives back the rest). A send ends
        within `send_seconds` (its request's timeout); one still waiting for its flood-limit
        slot by then has not gone, and is given back."""
        self._stopping = True
        if lanes := list(self._lanes.values()):
            await asyncio.wait(lanes, timeout=self.settings.send_seconds)

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

    async def _claim(self, polled: bool = False) -> int:
        """Lease the rows due now and start their lanes; how many rows. On a poll (nothing rang)
        it looks with a read first: an idle sender never takes the write lock."""
        room = self.settings.lanes - len(self._lanes)
        if room <= 0 or self._stopping:
            self._due = True  # claim once a lane is free
            return 0
        busy = list(self._lanes)
        self._due, self._claiming = False, True
        self._note_if_idle()
        asked = self._leases.asked()
        try:
            # What this sender sent is written before it claims again (and looks at what is due).
            if not await self._recorder.flush():
                raise ConnectionError("the outcomes could not be written")
            if polled and not busy and not await outbox.any_due(self.uow_factory()):
                claimed = []
            else:
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
        self._leases.granted(asked, [rows[0].chat_id for rows in chats])
        for rows in chats:
            lane = asyncio.create_task(self._lane(rows), name=f"outbox-chat-{rows[0].chat_id}")
            self._lanes[rows[0].chat_id] = lane
        if busy or len(chats) == room or any(len(r) == self.settings.per_chat for r in chats):
            self._due = True  # it may have left rows behind
        self._note_if_idle()
        return len(claimed)

    async def _keep_leases(self) -> None:
        """Renew the leases of the chats being sent to well before they run out."""

        async def renew(chats: list[int]) -> set[int]:
            return await outbox.renew(self.uow_factory(), self.owner, self.settings.lease, chats)

        await keep_leases(self._leases, lambda: list(self._lanes), renew, "outbox")

    async def _give_back(self) -> None:
        """On the way out: rows still leased here (a claim cut short) go to the next sender
        now, not when their lease runs out."""
        try:
            if released := await outbox.give_back(self.uow_factory(), self.owner):
                log.info("gave back %s outbox rows on stopping", released)
        except Exception:
            log_failure(log, "could not give back the outbox leases; they run out by themselves")

    async def _lane(self, deliveries: Sequence[Delivery]) -> None:
        """One chat's rows, in order; the rest wait behind a row that must be tried again. A
        row goes only while the chat's lease surely outlasts its send, and the sender is not
        stopping; a send once started is never cut short (`stop`). Plain texts in a row are
        merged into one message (`_merged`): a chat with a backlog gets fewer messages,
        sooner."""
        chat_id = deliveries[0].chat_id
        # This lane's task only: a message that waited for its slot goes only if still safe.
        UNDER_LEASE.set(lambda: not self._stopping and self._leases.safe(chat_id))
        done = 0
        try:
            while done < len(deliveries):
                if self._stopping or not self._leases.safe(chat_id):
                    break
                run = self._merged(deliveries[done:])
                rows = [delivery for delivery, _ in run] or deliveries[done : done + 1]
                outcomes = await self._attempt_each(rows, run)
                done += len(rows)
                for outcome in outcomes:
                    self._record(outcome)
                if any(isinstance(outcome, RetryAt | Untried) for outcome in outcomes):
                    break
        finally:
            for untried in deliveries[done:]:
                self._record(Untried(untried.id))
            self._lanes.pop(chat_id, None)
            self._leases.dropped(chat_id)

    def _merged(self, deliveries: Sequence[Delivery]) -> list[tuple[Delivery, str]]:
        """The plain texts (no buttons, nothing edited) at the head of the rows, as many as fit
        in one message; empty unless there are two or more."""
        run: list[tuple[Delivery, str]] = []
        size = 0
        for delivery in deliveries:
            text = self._plain_text(delivery)
            if text is None or size + MERGE_SEPARATOR_SIZE + _size(text) > MESSAGE_MAX:
                break
            run.append((delivery, text))
            size += MERGE_SEPARATOR_SIZE + _size(text)
        return run if len(run) > 1 else []

    def _plain_text(self, delivery: Delivery) -> str | None:
        notice = delivery.notice
        if isinstance(notice, UnreadableNotice) or supersedes(notice) is not None:
            return None
        try:
            rendered = self._render(delivery.locale, notice)
        except Exception:
            return None  # refused on its own, by `_attempt`
        if rendered.keyboard is not None or rendered.superseded_text is not None:
            return None
        return rendered.text

    async def _attempt_each(
        self, deliveries: Sequence[Delivery], merged: list[tuple[Delivery, str]]
    ) -> list[Outcome]:
        """The outcome of each row: sent alone, or `merged` into one message."""
        first = deliveries[0]
        try:
            if merged:
                outcome = await self._send_merged(first, [text for _, text in merged])
            else:
                outcome = await self._attempt(first)
        except LeaseLost:
            log.warning("%s not sent now: stopping, or its chat's lease is gone", describe(first))
            outcome = Untried(first.id)
        except Exception as error:  # the database, most likely: the rows wait a while
            delay = backoff(first.attempts)
            log_failure(log, "%s failed; trying again in %.1f s", describe(first), delay)
            outcome = RetryAt(first.id, after(delay), repr(error))
        if outcome is None:
            return []
        return [_alike(outcome, delivery.id) for delivery in deliveries]

    async def _send_merged(self, first: Delivery, texts: list[str]) -> Outcome | None:
        """Several plain notices as one message; what Telegram says of it goes for each."""
        try:
            message = await self.bot.send_message(first.chat_id, MERGE_SEPARATOR.join(texts))
        except TelegramAPIError as error:
            return await self._refused_by_telegram(first, error)
        log.info("%s and %s more delivered as one message", describe(first), len(texts) - 1)
        return Sent(first.id, message.message_id)

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
            return render(notice, self.settings.zone)

    async def _refused_by_telegram(
        self, delivery: Delivery, error: TelegramAPIError
    ) -> Outcome | None:
        where = describe(delivery)
        if isinstance(error, TelegramRetryAfter):
            log.warning("%s: flood limit, waiting %s s", where, error.retry_after)
            await self._floods.saw(delivery.chat_id, error.retry_after)
            return RetryAt(delivery.id, after(error.retry_after), error.message)
        if isinstance(error, TelegramMigrateToChat):
            log.info("%s: the group is now %s", where, error.migrate_to_chat_id)
            await outbox.chat_moved(self.uow_factory(), delivery.chat_id, error.migrate_to_chat_id)
            return Untried(delivery.id)
        if isinstance(error, TelegramForbiddenError) and isinstance(
            delivery.notice, OrderAssigned | OrderOffered
        ):
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
            delay = backoff(delivery.attempts)
            log.warning("%s: Telegram unavailable (%s); again in %.1f s", where, error, delay)
            return RetryAt(delivery.id, after(delay), str(error))
        log.warning("%s refused: %s", where, error)
        return Refused(delivery.id, str(error))

    async def _send(self, delivery: Delivery, rendered: Rendered) -> int | None:
        assert not isinstance(delivery.notice, UnreadableNotice)
        if supersedes(delivery.notice) is not None:
            # The messages it replaces may have gone out just now, from this very lane.
            await asyncio.shield(self._recorder.flush())
        replaced = await outbox.superseded(self.uow_factory(), delivery)
        for message_id in replaced:
            await self._supersede(delivery.chat_id, message_id, rendered)
        text, keyboard = rendered.text, rendered.keyboard
        if text is None and not replaced and rendered.superseded_keyboard is not None:
            # What it should have edited never went out (or was not recorded): its buttons
            # must reach the chat all the same, as a message of their own.
            text, keyboard = rendered.superseded_text, rendered.superseded_keyboard
        if (venue := rendered.venue) is not None:
            sent = await self.bot.send_venue(
                delivery.chat_id, venue.lat, venue.lon, venue.title, venue.address
            )
            return sent.message_id
        if text is None:
            return None
        message = await self.bot.send_message(delivery.chat_id, text, reply_markup=keyboard)
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
                    rendered.superseded_text,
                    chat_id=chat_id,
                    message_id=message_id,
                    reply_markup=rendered.superseded_keyboard,
                )
        except TelegramBadRequest as error:
            log.info("message %s in chat %s not edited: %s", message_id, chat_id, error.message)


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


def _size(text: str) -> int:
    """A text's length as Telegram counts it (UTF-16 code units); its tags count too, which
    only errs on the safe side."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _alike(outcome: Outcome, delivery_id: int) -> Outcome:
    """The same outcome for another row of the same message."""
    match outcome:
        case Sent():
            return Sent(delivery_id, outcome.message_id)
        case Refused():
            return Refused(delivery_id, outcome.error)
        case RetryAt():
            return RetryAt(delivery_id, outcome.at, outcome.error)
        case Untried():
            return Untried(delivery_id)
