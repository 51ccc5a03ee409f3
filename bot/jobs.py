"""Scheduled jobs, on APScheduler 3's AsyncIOScheduler with its in-memory job store.

Each process schedules its own jobs and shares no job store. Every job is safe to run on
several instances at once: its effect is guarded in the database (a compare-and-set, or a
row per day), so nothing is assigned, reminded or reported twice.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.settings import Settings
from db.uow import UnitOfWorkFactory
from services import clock, orders, outbox, statistics

log = logging.getLogger(__name__)


def start_jobs(settings: Settings, uow_factory: UnitOfWorkFactory) -> AsyncIOScheduler:
    """The sweep and the overdue check now and every SWEEP_INTERVAL_SECONDS; the daily report
    at DAILY_REPORT_AT (and now, if that time has passed today without one); pruning daily."""
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    now = clock.utcnow()

    async def sweep() -> None:
        if assigned := await orders.sweep_queue(uow_factory()):
            log.warning("the sweep assigned %s queued orders", assigned)

    async def remind() -> None:
        overdue = timedelta(minutes=settings.order_overdue_minutes)
        if reminded := await orders.remind_overdue(uow_factory(), overdue):
            log.info("reminded couriers of %s overdue orders", reminded)

    async def report() -> None:
        if await statistics.send_daily_report(uow_factory(), settings.zone):
            log.info("the daily report is out")

    async def prune() -> None:
        retention = timedelta(days=settings.outbox_retention_days)
        if pruned := await outbox.prune(uow_factory(), retention):
            log.info("pruned %s delivered or failed outbox rows", pruned)

    every = {
        "trigger": "interval",
        "seconds": settings.sweep_interval_seconds,
        "next_run_time": now,
    }
    _add(scheduler, sweep, "queue-sweep", **every)
    _add(scheduler, remind, "overdue-reminders", **every)
    at = settings.report_time
    _add(scheduler, report, "daily-report", trigger="cron", hour=at.hour, minute=at.minute)
    if _passed_today(now, settings):
        _add(scheduler, report, "daily-report-catch-up", trigger="date", run_date=now)
    _add(scheduler, prune, "outbox-pruning", trigger="interval", hours=24, next_run_time=now)
    scheduler.start()
    return scheduler


def _add(
    scheduler: AsyncIOScheduler, job: Callable[[], Awaitable[None]], name: str, **trigger: object
) -> None:
    async def logged() -> None:
        try:
            await job()
        except asyncio.CancelledError:
            log.info("the %s job was stopped by the shutdown; it runs again after the start", name)
        except Exception:
            log.exception("the %s job failed; it runs again on schedule", name)

    scheduler.add_job(logged, id=name, max_instances=1, coalesce=True, **trigger)


def _passed_today(now: datetime, settings: Settings) -> bool:
    local = now.astimezone(settings.zone)
    return local.time() >= settings.report_time
