"""Offers' deadlines, fired on time by every instance.

The deadlines live in the database (services.offers), so a restart or another instance loses
none. The loop sleeps until the soonest open offer runs out, looking again at least every
LOOK_SECONDS for offers other instances made, and runs out whatever is due, a batch per
transaction. Instances racing for the same deadline decide it once (a compare-and-set).
"""

import asyncio
import logging

from bot.logs import log_failure
from bot.telegram.lanes import backoff
from db.uow import UnitOfWorkFactory
from services import clock, offers

log = logging.getLogger(__name__)
LOOK_SECONDS = 1.0


class OfferDeadlines:
    def __init__(self, uow_factory: UnitOfWorkFactory, look_seconds: float = LOOK_SECONDS) -> None:
        self.uow_factory = uow_factory
        self.look_seconds = look_seconds

    async def run(self) -> None:
        """Until cancelled."""
        failures = 0
        while True:
            try:
                pause = await self._fire()
                failures = 0
            except Exception:
                pause = backoff(failures)
                failures += 1
                log_failure(log, "offers' deadlines not fired; trying again in %.1f s", pause)
            await asyncio.sleep(pause)

    async def _fire(self) -> float:
        """Run out every offer due; how long until the next look."""
        while await offers.expire_due(self.uow_factory()) == offers.EXPIRY_BATCH:
            pass  # a full batch: more may be due
        deadline = await offers.next_deadline(self.uow_factory())
        if deadline is None:
            return self.look_seconds
        until = (deadline - clock.utcnow()).total_seconds()
        return min(max(until, 0.0), self.look_seconds)
