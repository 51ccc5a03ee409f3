"""Long polling that tells Telegram an update was taken only once it is stored.

aiogram's own loop confirms an update (the next getUpdates' offset) before its handler has
run, so a stop or a crash in between loses it. Here each batch goes into the inbox
(bot.telegram.inbox) first; the offset moves past it only then. A batch stored and not yet confirmed
when the bot stops comes again at the next start, and the inbox keeps it once.
"""

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.types import Update
from aiogram.utils.backoff import Backoff

from bot.logs import log_failure
from bot.startup import BACKOFF
from bot.telegram.intake import Intake
from handlers.errors import transient

log = logging.getLogger(__name__)
POLL_SECONDS = 30  # how long one getUpdates waits for an update


class Poller:
    def __init__(self, intake: Intake, allowed_updates: list[str]) -> None:
        self.intake = intake
        self.bot: Bot = intake.inbox.bot
        self.allowed_updates = allowed_updates
        self._offset: int | None = None

    async def run(self) -> None:
        """Until cancelled: take updates, store them, then confirm them."""
        backoff = Backoff(config=BACKOFF)
        while True:
            updates = await self._next_batch(backoff)
            if not updates:
                continue
            await self._keep(updates, backoff)
            newest = max(update.update_id for update in updates)
            self._offset = max(self._offset or 0, newest + 1)

    async def _keep(self, updates: list[Update], backoff: Backoff) -> None:
        """Store the batch, trying again while the database is away. An update that can
        never be stored (it cannot even be written down) is logged and left behind: the
        updates of every other chat must not wait on it."""
        while True:
            try:
                await self.intake.keep(updates)
                return
            except Exception as error:
                if transient(error):
                    log_failure(log, "could not store %s updates; trying again", len(updates))
                    await backoff.asleep()
                    continue
                if len(updates) > 1:
                    for update in updates:
                        await self._keep([update], backoff)
                    return
                log.error(
                    "update %s cannot be stored, and is dropped: %r", updates[0].update_id, error
                )
                return

    async def _next_batch(self, backoff: Backoff) -> list[Update]:
        timeout = int(self.bot.session.timeout + POLL_SECONDS)
        try:
            updates = await self.bot.get_updates(
                offset=self._offset,
                timeout=POLL_SECONDS,
                allowed_updates=self.allowed_updates,
                request_timeout=timeout,
            )
        except TelegramRetryAfter as error:
            await asyncio.sleep(error.retry_after)
            return []
        except (TelegramNetworkError, TelegramServerError) as error:
            log.warning("getUpdates failed (%s); again in %.1f s", error, backoff.next_delay)
            await backoff.asleep()
            return []
        backoff.reset()
        return updates
