"""The outbox sender: one task that delivers outbox rows to Telegram.

Deliberately simple for now: one instance, rows in order. While Telegram is unreachable
or flood-limits us, nothing is given up: the sender backs off and tries the same row again.
A row Telegram refuses for good (the user blocked the bot, the chat is gone) is dropped;
any other refusal is retried a few times. The hardened sender (its own flood limiter,
exactly-once across instances) replaces this one.
"""

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiogram.utils.i18n import I18n

from db.uow import UnitOfWorkFactory
from handlers.i18n import speaking
from handlers.notices import render
from services import outbox
from services.notices import UnreadableNotice
from services.outbox import Delivery

log = logging.getLogger(__name__)
BATCH = 50
OUTAGE_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=60.0, factor=2.0, jitter=0.1)


class TelegramUnavailable(Exception):
    """Telegram could not take a message just now; the row stays pending."""

    def __init__(self, wait: float | None = None) -> None:
        super().__init__(wait)
        self.wait = wait


class OutboxSender:
    def __init__(
        self, bot: Bot, uow_factory: UnitOfWorkFactory, i18n: I18n, poll_seconds: float
    ) -> None:
        self.bot = bot
        self.uow_factory = uow_factory
        self.i18n = i18n
        self.poll_seconds = poll_seconds

    async def run(self) -> None:
        """Deliver forever; sleep when there is nothing to send, back off while Telegram is away."""
        backoff = Backoff(config=OUTAGE_BACKOFF)
        while True:
            try:
                sent = await self.deliver_pending()
            except TelegramUnavailable as unavailable:
                delay = next(backoff)
                await asyncio.sleep(unavailable.wait or delay)
                continue
            except Exception:
                log.exception("outbox delivery failed; retrying")
                sent = 0
            backoff.reset()
            if sent == 0:
                await asyncio.sleep(self.poll_seconds)

    async def deliver_pending(self) -> int:
        """One pass over the waiting rows; returns how many were handled.

        Raises TelegramUnavailable, leaving the rest for later, when Telegram is away.
        """
        items = await outbox.pending(self.uow_factory(), BATCH)
        for item in items:
            await self._deliver(item)
        return len(items)

    async def _deliver(self, item: Delivery) -> None:
        if isinstance(item.notice, UnreadableNotice):
            log.error("%s dropped: %s", self._describe(item), item.notice)
            await self._record_failure(item, item.notice, final=True)
            return
        try:
            message_id = await self._send(item)
        except TelegramRetryAfter as error:
            log.warning("outbox %s: flood limit, waiting %s s", item.id, error.retry_after)
            raise TelegramUnavailable(error.retry_after) from error
        except (TelegramNetworkError, TelegramServerError) as error:
            log.warning("outbox %s: Telegram unavailable (%s); backing off", item.id, error)
            raise TelegramUnavailable from error
        except (TelegramForbiddenError, TelegramBadRequest) as error:
            # Blocked by the user, or a chat that is gone: retrying cannot help.
            log.warning("%s dropped: %s", self._describe(item), error.message)
            await self._record_failure(item, error, final=True)
            return
        except TelegramAPIError as error:
            log.warning("%s failed: %s", self._describe(item), error)
            await self._record_failure(item, error, final=False)
            return
        await outbox.mark_sent(self.uow_factory(), item.id, message_id)
        log.info("%s delivered", self._describe(item))

    @staticmethod
    def _describe(item: Delivery) -> str:
        order = getattr(item.notice, "order_id", None)
        about = f" of order {order}" if order is not None else ""
        kind = getattr(item.notice, "kind", "unreadable")
        return f"outbox {item.id} ({kind}{about}) to chat {item.chat_id}"

    async def _send(self, item: Delivery) -> int | None:
        assert not isinstance(item.notice, UnreadableNotice)
        with speaking(self.i18n, item.locale):
            rendered = render(item.notice)
        for message_id in item.superseded:
            await self._supersede(item.chat_id, message_id, rendered.superseded_text)
        if rendered.text is None:
            return None
        message = await self.bot.send_message(
            item.chat_id, rendered.text, reply_markup=rendered.keyboard
        )
        return message.message_id

    async def _supersede(self, chat_id: int, message_id: int, text: str | None) -> None:
        """Best effort: the message may be gone, or already say this."""
        try:
            if text is None:
                await self.bot.edit_message_reply_markup(
                    chat_id=chat_id, message_id=message_id, reply_markup=None
                )
            else:
                await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramBadRequest as error:
            log.info("message %s in chat %s was not edited: %s", message_id, chat_id, error.message)

    async def _record_failure(self, item: Delivery, error: Exception, *, final: bool) -> None:
        await outbox.mark_failed(self.uow_factory(), item.id, str(error), final=final)
