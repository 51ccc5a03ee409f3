"""A day's numbers for dispatchers, days being those of the configured time zone: today's on
request, and each day's in its report at DAILY_REPORT_AT."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from db.models import OrderStatus
from db.uow import UnitOfWork
from services import clock, notices
from services.access import require_dispatcher
from services.notices import DailyReport
from services.read_models import Acceptance, CourierStats, TodayStats


def mean_duration(durations: list[timedelta]) -> timedelta | None:
    """The mean, or None when there is nothing to average."""
    return sum(durations, timedelta()) / len(durations) if durations else None


# How far back acceptance rates and times to accept look.
ACCEPTANCE_WINDOW = timedelta(days=7)


async def acceptance(
    uow: UnitOfWork, courier_ids: Iterable[int] | None = None
) -> dict[int, Acceptance]:
    """How each courier (of these, or every one) answered the offers of ACCEPTANCE_WINDOW."""
    answered = await uow.offers.answered_since(clock.utcnow() - ACCEPTANCE_WINDOW, courier_ids)
    offers: dict[int, int] = defaultdict(int)
    waits: dict[int, list[timedelta]] = defaultdict(list)
    for answer in answered:
        offers[answer.courier_id] += 1
        if answer.accepted_in is not None:
            waits[answer.courier_id].append(answer.accepted_in)
    return {
        courier_id: Acceptance(
            offers=count,
            accepted=len(waits[courier_id]),
            median_to_accept=_median(waits[courier_id]),
        )
        for courier_id, count in offers.items()
    }


def _median(durations: list[timedelta]) -> timedelta | None:
    if not durations:
        return None
    return timedelta(seconds=median(d.total_seconds() for d in durations))


# How far back a start looks for days whose report was missed (the bot was down at the time).
CATCH_UP_DAYS = 7


def last_report_day(timezone: ZoneInfo, at: time) -> date:
    """The day of the latest report time that has passed: today once `at` has, else
    yesterday. A report that runs late, past midnight, is still the day before's."""
    now = clock.utcnow().astimezone(timezone)
    return now.date() if now.time() >= at else now.date() - timedelta(days=1)


async def send_daily_report(uow: UnitOfWork, timezone: ZoneInfo, at: time) -> bool:
    """Every dispatcher and admin gets the numbers of the day whose report time (`at`) passed
    last, once whoever runs this; False if that report went out already. For the scheduler."""
    return await _report(uow, timezone, last_report_day(timezone, at), quiet_too=True)


async def catch_up_reports(uow: UnitOfWork, timezone: ZoneInfo, at: time) -> int:
    """At start: the reports of the last CATCH_UP_DAYS days that had orders and were missed,
    oldest first; a day with none (the bot was not running, or nothing happened) gets none.
    How many went out."""
    last = last_report_day(timezone, at)
    days = [last - timedelta(days=back) for back in reversed(range(CATCH_UP_DAYS))]
    return sum([await _report(uow, timezone, day, quiet_too=False) for day in days])


async def _report(uow: UnitOfWork, timezone: ZoneInfo, day: date, *, quiet_too: bool) -> bool:
    async with uow.write():
        stats = await _day(uow, timezone, day)
        if not quiet_too and not (stats.posted or stats.completed):
            return False
        if not await uow.reports.claim(day, clock.utcnow()):
            return False
        await notices.to_staff(uow, DailyReport(stats=stats))
        await uow.commit()
    return True


async def today(uow: UnitOfWork, actor_id: int, timezone: ZoneInfo) -> TodayStats:
    async with uow.read():
        await require_dispatcher(uow, actor_id)
        return await _day(uow, timezone, clock.utcnow().astimezone(timezone).date())


async def _day(uow: UnitOfWork, timezone: ZoneInfo, day: date) -> TodayStats:
    start = datetime.combine(day, time(), timezone)
    end = datetime.combine(day + timedelta(days=1), time(), timezone)
    completed = await uow.orders.completed_between(start, end)
    durations: dict[int, list[timedelta]] = defaultdict(list)
    for order in completed:
        assert order.courier_id
        assert order.completed_at
        assert order.assigned_at
        durations[order.courier_id].append(order.completed_at - order.assigned_at)
    rates = await acceptance(uow)
    couriers = await uow.couriers.by_ids(durations.keys() | rates.keys())
    per_courier = sorted(
        (
            CourierStats(
                cid,
                couriers[cid].name,
                len(durations[cid]),
                mean_duration(durations[cid]),
                rates.get(cid),
            )
            for cid in couriers
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
        offered=counts[OrderStatus.OFFERED],
        average_delivery=mean_duration([t for times in durations.values() for t in times]),
        couriers=tuple(per_courier),
    )
