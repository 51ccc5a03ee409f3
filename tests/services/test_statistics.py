"""Today's statistics, with "today" in the configured time zone."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from services import orders, statistics
from services.errors import Forbidden
from tests.conftest import FakeClock
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk


async def test_today_counts_and_averages(desk: Desk, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]], name="Ann")
    await desk.add_courier(2, [ids["North"]], name="Bob")
    fake_clock.now = fake_clock.now.replace(hour=1)  # 04:00 in Moscow, the same day
    early = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North old")
    fake_clock.now = fake_clock.now.replace(hour=10)  # 2026-03-02 13:00 in Moscow
    first = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North a")
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North b")
    fake_clock.advance(minutes=30)
    await desk(orders.complete_order, 1, early.id)
    await desk(orders.complete_order, 2, first.id)
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North c")

    stats = await desk(statistics.today, DISPATCHER, ZoneInfo("Europe/Moscow"))

    assert str(stats.day) == "2026-03-02"
    assert stats.posted == 4
    assert stats.completed == 2
    assert stats.in_progress == 2
    assert stats.queued == 0
    # 9 h 30 min for the early order, 30 min for the first: 5 h on average.
    assert stats.average_delivery == timedelta(hours=5)
    assert [(c.name, c.completed) for c in stats.couriers] == [("Ann", 1), ("Bob", 1)]


async def test_an_order_posted_before_local_midnight_is_earlys(desk: Desk, fake_clock: FakeClock):
    await desk.add_districts("North")
    fake_clock.now = fake_clock.now.replace(hour=20, minute=30)  # 23:30 in Moscow
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North a")
    fake_clock.advance(hours=1)  # 00:30 the next day in Moscow, same day in UTC

    moscow = await desk(statistics.today, DISPATCHER, ZoneInfo("Europe/Moscow"))
    utc = await desk(statistics.today, DISPATCHER, ZoneInfo("UTC"))

    assert moscow.posted == 0
    assert moscow.queued == 1
    assert utc.posted == 1
    assert moscow.average_delivery is None
    with pytest.raises(Forbidden):
        await desk(statistics.today, 1, ZoneInfo("UTC"))
