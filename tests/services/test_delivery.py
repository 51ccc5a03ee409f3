"""The outbox as the sender sees it: typed notices, leases per chat, commit order, retention,
and the scheduled jobs that write to it, on SQLite and PostgreSQL."""

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import pytest

from db.uow import UnitOfWorkFactory
from services import couriers, notices, orders, outbox, statistics
from services.notices import Notice, WithdrawReason
from services.outbox import RetryAt, Sent, Untried
from services.read_models import Acceptance, CourierStats, TodayStats
from tests.conftest import FakeClock
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, Desk

UTC_ZONE = ZoneInfo("UTC")
LEASE = timedelta(seconds=60)
STATS = TodayStats(
    day=date(2026, 3, 2),
    posted=3,
    completed=2,
    queued=1,
    in_progress=0,
    average_delivery=timedelta(minutes=12),
    couriers=(
        CourierStats(1, "Ann", 2, timedelta(minutes=12)),
        CourierStats(2, "Bob", 0, None, Acceptance(4, 3, timedelta(seconds=9))),
    ),
    offered=1,
)
EXAMPLES: list[Notice] = [
    notices.OrderAssigned(order_id=1, district="North", description="2 pizzas <b>"),
    notices.OrderOffered(
        order_id=1,
        district="North",
        description="2 pizzas <b>",
        expires_at=datetime(2099, 3, 2, 9, 1, tzinfo=UTC),  # still open when rendered
    ),
    notices.OrderPlace(
        order_id=1,
        role=notices.PlaceRole.PICKUP,
        lat=52.52,
        lon=13.405,
        address="Rose & Co <b>",
        expires_at=datetime(2099, 3, 2, 9, 1, tzinfo=UTC),
    ),
    notices.OfferAccepted(order_id=1, district="North", description="2 pizzas <b>"),
    notices.OfferRefused(order_id=1, expired=True),
    notices.OfferRefused(order_id=1, expired=False),
    notices.OffersMissed(courier_id=1, missed=2),
    notices.OrderWithdrawn(order_id=1, reason=WithdrawReason.RETURNED),
    notices.RegistrationApproved(courier_id=1),
    notices.RegistrationRejected(courier_id=1),
    notices.ShiftEnded(courier_id=1),
    notices.CourierBlocked(courier_id=1),
    notices.CourierUnblocked(courier_id=1),
    notices.OrderOverdue(order_id=1, minutes=61),
    notices.OrderPosted(
        order_id=1, district="North", courier_id=1, courier_name="Ann", position=None
    ),
    notices.OrderPosted(
        order_id=2, district="North", courier_id=None, courier_name=None, position=3
    ),
    notices.OrderPosted(
        order_id=1, district="North", courier_id=1, courier_name="Ann", position=None, offered=True
    ),
    notices.DispatchAssigned(order_id=1, courier_id=1, courier_name="Ann"),
    notices.DispatchAccepted(order_id=1, courier_id=1, courier_name="Ann", seconds=12),
    notices.DispatchRefused(order_id=1, couriers=3, position=1),
    notices.DispatchCompleted(order_id=1, courier_id=1, courier_name="Ann", seconds=90),
    notices.DispatchRequeued(order_id=1, position=2),
    notices.DispatchOverdue(order_id=1, courier_id=1, courier_name="Ann", minutes=61),
    notices.CourierUnreachable(order_id=1, courier_id=1, courier_name="Ann"),
    notices.RegistrationRequest(courier_id=1, name="Ann", districts=("North", "South")),
    notices.RegistrationClosed(courier_id=1, name="Ann", approved=True),
    notices.DailyReport(stats=STATS),
]


def test_every_kind_of_notice_round_trips_through_json():
    kinds = get_args(get_args(Notice)[0])
    assert {type(example) for example in EXAMPLES} == set(kinds)
    for example in EXAMPLES:
        stored = json.loads(json.dumps(notices.payload_of(example)))
        assert notices.read(example.kind, stored) == example


@pytest.mark.parametrize(
    ("kind", "payload"),
    [("order_teleported", {}), ("order_assigned", {"order_id": "twelve"}), ("daily_report", {})],
)
def test_a_row_this_release_cannot_read_is_named_as_such(kind: str, payload: dict):
    with pytest.raises(notices.UnreadableNotice):
        notices.read(kind, payload)


def numbered(n: int) -> Notice:
    """A notice about nothing in the database, told apart by its number."""
    return notices.DailyReport(stats=replace(STATS, posted=n))


def number(delivery: outbox.Delivery) -> int:
    assert isinstance(delivery.notice, notices.DailyReport)
    return delivery.notice.stats.posted


async def write(uow_factory: UnitOfWorkFactory, *chats: int) -> None:
    """One transaction writing a notice to each of these chats, in this order, numbered
    by chat."""
    uow = uow_factory()
    async with uow.write():
        for chat in chats:
            notices.write(uow, chat, None, numbered(chat))
        await uow.commit()


async def claim(
    uow_factory: UnitOfWorkFactory,
    chats: int = 10,
    per_chat: int = 10,
    owner: str = "sender-a",
    busy: tuple[int, ...] = (),
):
    return await outbox.claim(
        uow_factory(), owner, chats=chats, per_chat=per_chat, lease=LEASE, busy=busy
    )


async def test_a_chat_goes_to_one_sender_at_a_time(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    await write(uow_factory, 1, 1, 2, 1)

    first = await claim(uow_factory)
    assert [(d.chat_id, number(d)) for d in first] == [(1, 1)] * 3 + [(2, 2)]
    assert await claim(uow_factory) == []  # leased

    fake_clock.advance(seconds=61)  # the sender died: its lease ran out
    again = await claim(uow_factory)
    assert [d.id for d in again] == [d.id for d in first]


async def test_rows_behind_a_failed_one_wait_for_it(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    await write(uow_factory, 1, 1, 1)
    head, second, third = await claim(uow_factory)
    await outbox.record(
        uow_factory(),
        "sender-a",
        [
            RetryAt(head.id, fake_clock.now + timedelta(seconds=10), "500"),
            Untried(second.id),
            Untried(third.id),
        ],
    )

    assert await claim(uow_factory) == []  # the head is not due, so nothing of the chat is
    fake_clock.advance(seconds=11)
    retried = await claim(uow_factory)
    assert [d.id for d in retried] == [head.id, second.id, third.id]
    assert retried[0].attempts == 1

    await outbox.record(uow_factory(), "sender-a", [Sent(head.id, 500), Sent(second.id, 501)])
    assert [d.id for d in await claim(uow_factory)] == []  # the third is still leased
    fake_clock.advance(seconds=61)
    assert [d.id for d in await claim(uow_factory)] == [third.id]


async def test_senders_claiming_at_once_never_share_a_chat(
    desk: Desk, uow_factory: UnitOfWorkFactory
):
    for chat in range(1, 51):
        await write(uow_factory, chat, chat)

    claims = await asyncio.gather(
        *(claim(uow_factory, chats=15, owner=f"sender-{n}") for n in range(6))
    )

    claimed = [d.chat_id for deliveries in claims for d in deliveries]
    by_chat = {chat: sum(1 for c in claimed if c == chat) for chat in set(claimed)}
    assert set(by_chat.values()) == {2}  # both rows of a chat, to one claimer
    owners = [{d.chat_id for d in deliveries} for deliveries in claims]
    assert sum(len(o) for o in owners) == len(set().union(*owners))


async def test_a_sender_whose_lease_ran_out_changes_nothing_any_more(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    await write(uow_factory, 1)
    (row,) = await claim(uow_factory, owner="slow")
    fake_clock.advance(seconds=61)
    (taken,) = await claim(uow_factory, owner="other")

    await outbox.record(uow_factory(), "slow", [Untried(row.id)])  # too late: not theirs
    assert await claim(uow_factory, owner="third") == []  # still the other's lease
    await outbox.record(uow_factory(), "slow", [Sent(row.id, 1)])
    assert await claim(uow_factory, owner="third") == []
    await outbox.record(uow_factory(), "other", [Sent(taken.id, 2)])
    fake_clock.advance(seconds=61)
    assert await claim(uow_factory, owner="third") == []  # delivered, once recorded


async def test_a_living_sender_keeps_its_leases(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    await write(uow_factory, 1, 2)
    assert len(await claim(uow_factory, owner="alive")) == 2
    for _ in range(5):
        fake_clock.advance(seconds=40)
        assert await outbox.renew(uow_factory(), "alive", LEASE, [1, 2]) == {1, 2}
        assert await claim(uow_factory, owner="other") == []


async def test_rows_no_lane_sends_are_not_kept(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    """A claim that failed after its lease committed leaves rows no lane sends: they run out."""
    await write(uow_factory, 1, 2)
    assert len(await claim(uow_factory, owner="alive")) == 2
    fake_clock.advance(seconds=40)
    assert await outbox.renew(uow_factory(), "alive", LEASE, [1]) == {1}  # sending to chat 1 only
    fake_clock.advance(seconds=40)
    assert [d.chat_id for d in await claim(uow_factory, owner="other")] == [2]


async def test_a_stopping_sender_gives_its_rows_back(desk: Desk, uow_factory: UnitOfWorkFactory):
    await write(uow_factory, 1, 2)
    assert len(await claim(uow_factory, owner="stopping")) == 2
    assert await outbox.give_back(uow_factory(), "stopping") == 2
    assert len(await claim(uow_factory, owner="next")) == 2


async def test_a_sender_skips_the_chats_it_is_sending_to(
    desk: Desk, uow_factory: UnitOfWorkFactory
):
    await write(uow_factory, 1, 2)
    assert {d.chat_id for d in await claim(uow_factory, busy=(1,))} == {2}


async def test_a_chats_rows_are_numbered_in_commit_order(
    desk: Desk, uow_factory: UnitOfWorkFactory
):
    early = uow_factory()
    async with early.write():
        notices.write(early, 7, None, numbered(1))
        await early.outbox.write_added()  # inserted, and chat 7 locked, not yet committed
        late = asyncio.create_task(write(uow_factory, 7))
        await asyncio.sleep(0.3)
        assert not late.done()  # a later transaction for the same chat waits its turn
        await early.commit()
    await late

    rows = await claim(uow_factory)
    assert [number(d) for d in rows] == [1, 7]


async def test_delivered_rows_are_pruned_after_the_retention_period(
    desk: Desk, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North in progress")
    waiting = await desk(couriers.register_courier, 2, "Bo", [ids["North"]], approval_required=True)
    await write(uow_factory, 3)  # never delivered
    for delivery in await claim(uow_factory, chats=100):
        if delivery.chat_id != 3:
            await outbox.record(uow_factory(), "sender-a", [Sent(delivery.id, 1)])
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North waits")
    fake_clock.advance(days=31)

    # Of what was delivered, only the answer to posting may go yet (nothing edits it later)...
    assert await desk(outbox.prune, timedelta(days=30)) == 1
    await desk(couriers.decide_registration, ADMIN, waiting.id, approve=False)
    await desk(couriers.end_shift, ADMIN, 1)
    remaining = await desk.outbox()
    assert await desk(outbox.prune, timedelta(days=30)) > 0  # ...until nobody can edit it
    kept = await desk.outbox()
    assert (3, "daily_report", notices.payload_of(numbered(3))) in kept
    assert all(row in remaining for row in kept)


async def test_an_overdue_order_reminds_once_per_assignment(desk: Desk, fake_clock: FakeClock):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    await desk.add_courier(2, [ids["North"]])
    order = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")
    hour = timedelta(minutes=60)

    assert await desk(orders.remind_overdue, hour) == 0
    fake_clock.advance(minutes=61)
    assert await desk(orders.remind_overdue, hour) == 1
    assert await desk(orders.remind_overdue, hour) == 0
    await desk(orders.reassign_order, DISPATCHER, order.id, 2)  # a new courier, a new clock
    fake_clock.advance(minutes=61)
    assert await desk(orders.remind_overdue, hour) == 1

    told = [(chat, kind, p) for chat, kind, p in await desk.outbox() if "overdue" in kind]
    assert told == [
        (1, "order_overdue", {"order_id": order.id, "minutes": 61}),
        (
            DISPATCH_CHAT,
            "dispatch_overdue",
            {"order_id": order.id, "courier_id": 1, "courier_name": "Courier 1", "minutes": 61},
        ),
        (2, "order_overdue", {"order_id": order.id, "minutes": 61}),
        (
            DISPATCH_CHAT,
            "dispatch_overdue",
            {"order_id": order.id, "courier_id": 2, "courier_name": "Courier 2", "minutes": 61},
        ),
    ]


async def test_the_daily_report_goes_out_once_however_many_run_it(desk: Desk):
    sent = await asyncio.gather(
        *(desk(statistics.send_daily_report, UTC_ZONE, time(0, 0)) for _ in range(4))
    )

    assert sorted(sent) == [False, False, False, True]
    reports = [chat for chat, kind, _ in await desk.outbox() if kind == "daily_report"]
    assert sorted(reports) == [ADMIN, DISPATCHER]


def reported_days(outbox: list[tuple[int, str, dict]]) -> list[str]:
    """The days the reports in the outbox describe, as the admin got them."""
    return [
        p["stats"]["day"] for chat, kind, p in outbox if kind == "daily_report" and chat == ADMIN
    ]


async def test_a_report_that_runs_past_midnight_is_the_day_befores(
    desk: Desk, fake_clock: FakeClock
):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")  # 2 March
    fake_clock.now = fake_clock.now.replace(day=3, hour=0, minute=1)  # late for 23:59

    assert await desk(statistics.send_daily_report, UTC_ZONE, time(23, 59))

    reports = [p["stats"] for chat, kind, p in await desk.outbox() if kind == "daily_report"]
    assert {(stats["day"], stats["posted"]) for stats in reports} == {("2026-03-02", 1)}


async def test_a_start_catches_up_the_missed_reports_of_days_with_orders(
    desk: Desk, fake_clock: FakeClock
):
    at = time(21, 0)
    assert await desk(statistics.catch_up_reports, UTC_ZONE, at) == 0  # a first start: none
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    for day in (2, 4):  # the bot runs on the 2nd and the 4th, and is down at 21:00 each time
        fake_clock.now = fake_clock.now.replace(day=day, hour=12)
        await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")
    fake_clock.now = fake_clock.now.replace(day=5, hour=9)  # it starts again on the 5th

    assert await desk(statistics.catch_up_reports, UTC_ZONE, at) == 2
    assert await desk(statistics.catch_up_reports, UTC_ZONE, at) == 0  # each once
    assert reported_days(await desk.outbox()) == ["2026-03-02", "2026-03-04"]


async def test_a_group_that_became_a_supergroup_keeps_its_orders_and_notices(
    desk: Desk, uow_factory: UnitOfWorkFactory
):
    ids = await desk.add_districts("North")
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup")
    await write(uow_factory, DISPATCH_CHAT)
    new_chat = -1001234567890

    await desk(outbox.chat_moved, DISPATCH_CHAT, new_chat)

    assert {d.chat_id for d in await claim(uow_factory)} == {new_chat}
    await desk.add_courier(1, [ids["North"]])
    assert (new_chat, "dispatch_assigned") in [(c, k) for c, k, _ in await desk.outbox()]
