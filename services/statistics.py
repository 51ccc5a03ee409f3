"""Today's numbers for dispatchers, "today" being the day in the configured time zone, on
request and in the daily report."""

from collections import defaultdict
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from db.models import OrderStatus
from db.uow import UnitOfWork
from services import clock, notices
from services.access import require_dispatcher
from services.notices import DailyReport
from services.read_models import CourierStats, TodayStats


def mean_duration(durations: list[timedelta]) -> timedelta | None:
    """The mean, or None when there is nothing to average."""
    return sum(durations, timedelta()) / len(durations) if durations else None


async def send_daily_report(uow: UnitOfWork, timezone: ZoneInfo) -> bool:
    """Every dispatcher and admin gets today's numbers, once a day whoever runs this;
    False if today's report already went out. For the scheduler."""
    async with uow.write():
        stats = await _today(uow, timezone)
        if not await uow.reports.claim(stats.day, clock.utcnow()):
            return False
        await notices.to_staff(uow, DailyReport(stats=stats))
        await uow.commit()
    return True


async def today(uow: UnitOfWork, actor_id: int, timezone: ZoneInfo) -> TodayStats:
    async with uow.read():
        await require_dispatcher(uow, actor_id)
        return await _today(uow, timezone)


async def _today(uow: UnitOfWork, timezone: ZoneInfo) -> TodayStats:
    day = clock.utcnow().astimezone(timezone).date()
    start = datetime.combine(day, time(), timezone)
    end = datetime.combine(day + timedelta(days=1), time(), timezone)
    completed = await uow.orders.completed_between(start, end)
    durations: dict[int, list[timedelta]] = defaultdict(list)
    for order in completed:
        assert order.courier_id
        assert order.completed_at
        assert order.assigned_at
        durations[order.courier_id].append(order.completed_at - order.assigned_at)
    couriers = await uow.couriers.by_ids(durations)
    per_courier = sorted(
        (
            CourierStats(cid, couriers[cid].name, len(times), mean_duration(times))
            for cid, times in durations.items()
        ),
        key=lambda stats: (-stats.completed, stats.courier_id),
    )
    counts = await uow.orders.count_by_status()
    return TodayStats(
        day=day,
        posted=await uow.orders.count_created_between(start, end),
        completed=len(completed),
        queued=counts[OrderStatus.QUEUED],
        in_progress=counts[OrderStatus.ASSIGNED],
        average_delivery=mean_duration([t for times in durations.values() for t in times]),
        couriers=tuple(per_courier),
    )
