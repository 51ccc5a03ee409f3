"""Scheduled jobs, on APScheduler 3's AsyncIOScheduler with its in-memory job store.

Each process schedules its own jobs and shares no job store. Every job is safe to run on
several instances at once: its effect is guarded in the database (a compare-and-set, or a
row per day), so nothing is assigned, reminded or reported twice.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.logs import log_failure
from bot.settings import Settings
from db.uow import UnitOfWorkFactory
from services import clock, idempotency, inbox, orders, outbox, positions, statistics, webhooks

log = logging.getLogger(__name__)
# A report held up (a busy loop, a restart at the minute) still goes out within the hour.
REPORT_GRACE_SECONDS = 3600


class Jobs:
    """The sweep and the overdue check now and every SWEEP_INTERVAL_SECONDS; the daily report
    at DAILY_REPORT_AT, and now those of recent days with orders that missed theirs; pruning
    daily."""

    def __init__(self, settings: Settings, uow_factory: UnitOfWorkFactory) -> None:
        self.settings = settings
        self.uow_factory = uow_factory
        self._scheduler = AsyncIOScheduler(timezone=settings.zone)
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        settings = self.settings
        now = clock.utcnow()
        every = {"trigger": "interval", "seconds": settings.sweep_interval_seconds}
        self._add(self._sweep, "queue-sweep", next_run_time=now, **every)
        self._add(self._remind, "overdue-reminders", next_run_time=now, **every)
        at = settings.report_time
        self._add(
            self._report,
            "daily-report",
            trigger="cron",
            hour=at.hour,
            minute=at.minute,
            misfire_grace_time=REPORT_GRACE_SECONDS,
        )
        self._add(self._catch_up, "daily-report-catch-up", trigger="date", run_date=now)
        self._add(self._prune, "outbox-pruning", trigger="interval", hours=24, next_run_time=now)
        self._scheduler.start()

    async def stop(self, seconds: float) -> None:
        """No new runs; the ones under way get `seconds` to finish, then are cancelled."""
        self._scheduler.shutdown(wait=False)
        running = list(self._running)
        if running:
            _, late = await asyncio.wait(running, timeout=seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _add(self, job: Callable[[], Awaitable[None]], name: str, **trigger: object) -> None:
        async def tracked() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            except Exception:
                log_failure(log, "the %s job failed; it runs again on schedule", name)
            finally:
                self._running.discard(task)

        self._scheduler.add_job(
            tracked, id=name, name=name, max_instances=1, coalesce=True, **trigger
        )

    async def _sweep(self) -> None:
        if assigned := await orders.sweep_queue(self.uow_factory()):
            log.warning("the sweep assigned %s queued orders", assigned)
        # Erased at the end of each shift; one written at that very moment goes here.
        if erased := await positions.erase_off_shift(self.uow_factory()):
            log.info("erased %s positions of couriers off shift", erased)

    async def _remind(self) -> None:
        overdue = timedelta(minutes=self.settings.order_overdue_minutes)
        if reminded := await orders.remind_overdue(self.uow_factory(), overdue):
            log.info("reminded couriers of %s overdue orders", reminded)

    async def _report(self) -> None:
        settings = self.settings
        if await statistics.send_daily_report(
            self.uow_factory(), settings.zone, settings.report_time
        ):
            log.info("the daily report is out")

    async def _catch_up(self) -> None:
        settings = self.settings
        if caught_up := await statistics.catch_up_reports(
            self.uow_factory(), settings.zone, settings.report_time
        ):
            log.info("sent %s daily reports missed while the bot was away", caught_up)

    async def _prune(self) -> None:
        retention = timedelta(days=self.settings.outbox_retention_days)
        if pruned := await outbox.prune(self.uow_factory(), retention):
            log.info("pruned %s delivered or failed outbox rows", pruned)
        retention = timedelta(days=self.settings.inbox_retention_days)
        if pruned := await inbox.prune(self.uow_factory(), retention):
            log.info("pruned %s handled updates", pruned)
        if pruned := await idempotency.prune(self.uow_factory()):
            log.info("pruned %s expired idempotency keys", pruned)
        retention = timedelta(days=self.settings.outbox_retention_days)
        if pruned := await webhooks.prune(self.uow_factory(), retention):
            log.info("pruned %s sent or failed webhook deliveries", pruned)
