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
from services.outbox import OutboxItem

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
        async with self.uow_factory() as uow:
            items = await outbox.pending(uow, BATCH)
        for item in items:
            await self._deliver(item)
        return len(items)

    async def _deliver(self, item: OutboxItem) -> None:
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
        async with self.uow_factory() as uow:
            await outbox.mark_sent(uow, item.id, message_id)
        log.info("%s delivered", self._describe(item))

    @staticmethod
    def _describe(item: OutboxItem) -> str:
        order = item.payload.get("order_id")
        about = f" of order {order}" if order is not None else ""
        return f"outbox {item.id} ({item.notice}{about}) to chat {item.chat_id}"

    async def _send(self, item: OutboxItem) -> int:
        with speaking(self.i18n, item.locale):
            rendered = render(item.notice, item.payload)
        if item.stale_message_id is not None:
            await self._remove_button(item.chat_id, item.stale_message_id)
        message = await self.bot.send_message(
            item.chat_id, rendered.text, reply_markup=rendered.keyboard
        )
        return message.message_id

    async def _remove_button(self, chat_id: int, message_id: int) -> None:
        """Best effort: the message may be gone or already without its button."""
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None
            )
        except TelegramBadRequest as error:
            log.info(
                "message %s in chat %s kept its markup: %s", message_id, chat_id, error.message
            )

    async def _record_failure(self, item: OutboxItem, error: Exception, *, final: bool) -> None:
        async with self.uow_factory() as uow:
            await outbox.mark_failed(uow, item.id, str(error), final=final)
