"""Couriers' locations through the bot's doors, on both databases: the first share through
the handlers, live edits through the intake's position writer, in batches, beside dispatch."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

from aiogram.methods import SendMessage, SendVenue
from aiogram.types import Chat, Location, Message, MessageOriginUser, Update, Venue
from sqlalchemy import func, select

from bot.metrics import Metrics
from bot.telegram.inbox import InboxSettings, InboxWorker
from bot.telegram.intake import Intake, PositionWriter
from db.models import CourierPosition, InboxUpdate
from services import couriers, orders
from services.orders import Places
from services.read_models import Point
from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, texts
from tests.helpers import DISPATCH_CHAT, DISPATCHER

PICKUP = Point(52.52, 13.405)
COURIERS = range(100, 200)


def live_edit(update_id: int, user: int, lat: float, lon: float, *, live: bool = True) -> Update:
    """Telegram's update for a live location that moved (or stopped: no live_period)."""
    sent = datetime.now(UTC) - timedelta(minutes=1)
    place = Location(latitude=lat, longitude=lon, live_period=3600 if live else None)
    return Update(
        update_id=update_id,
        edited_message=Message(
            message_id=1,
            date=sent,
            edit_date=int(time.time()),
            chat=Chat(id=user, type="private"),
            from_user={"id": user, "is_bot": False, "first_name": "C"},
            location=place,
        ),
    )


def intake_of(harness: Harness, metrics: Metrics) -> Intake:
    settings = InboxSettings(poll_seconds=0.05, lease=timedelta(seconds=60))
    inbox = InboxWorker(harness.dispatcher, harness.bot, harness.uow_factory, settings)
    return Intake(inbox, PositionWriter(harness.uow_factory, metrics))


async def kept(harness: Harness) -> dict[int, tuple[float, float]]:
    uow = harness.uow_factory()
    async with uow.write():  # on_shift locks the couriers' rows
        rows = await uow.session.scalars(select(CourierPosition))
        by_courier = {row.courier_id: (row.lat, row.lon) for row in rows}
        ids = await uow.positions.on_shift(COURIERS)
    return {
        telegram: by_courier[courier] for telegram, courier in ids.items() if courier in by_courier
    }


async def test_a_courier_shares_a_location_and_is_asked_for_it_at_shift_start(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await approve_all(harness)
    (online,) = [r for r in await harness.send(7, "/online") if isinstance(r, SendMessage)]
    assert "Share My Live Location" in online.text
    assert online.reply_markup.keyboard[0][0].request_location  # type: ignore[union-attr]

    place = Location(latitude=52.52, longitude=13.405, live_period=8 * 3600)
    (answer,) = texts(await harness.send(7, None, location=place))
    assert "I follow your live location until" in answer
    (card,) = texts(await harness.send(DISPATCHER, "/courier 1"))
    assert "Location: <a href=" in card
    assert "live" in card

    await harness.send(7, "/offline")
    (card,) = texts(await harness.send(DISPATCHER, "/courier 1"))
    assert "Location: not shared" in card  # erased with the shift
    (answer,) = texts(await harness.send(7, None, location=place))
    assert "You are off shift" in answer
    # A venue, or a location forwarded from someone, is a place, not where they are.
    await harness.send(7, "/online")
    venue = Venue(location=place, title="Rose & Co", address="1 Main St")
    (answer,) = texts(await harness.send(7, None, venue=venue, location=place))
    assert "That is a place, not where you are" in answer
    forwarded = MessageOriginUser(date=datetime.now(UTC), sender_user=harness.user(9))
    (answer,) = texts(await harness.send(7, None, location=place, forward_origin=forwarded))
    assert "That is a place" in answer
    (card,) = texts(await harness.send(DISPATCHER, "/courier 1"))
    assert "Location: not shared" in card
    forever = Location(latitude=52.52, longitude=13.405, live_period=0x7FFFFFFF)
    (answer,) = texts(await harness.send(7, None, location=forever))
    assert "until you stop sharing it" in answer
    # Someone who is no courier is told so, and nothing is kept.
    (answer,) = texts(await harness.send(8, None, location=place))
    assert "registered couriers" in answer


async def test_ten_thousand_edits_from_a_hundred_couriers_in_two_seconds(harness: Harness):
    """Each courier's last position is kept, in a few writes, and orders are posted and
    given out all along."""
    await add_districts(harness, "North")
    district = 1
    for user in COURIERS:
        await couriers.register_courier(
            harness.uow_factory(), user, f"C{user}", [district], approval_required=False
        )
    metrics = Metrics()
    intake = intake_of(harness, metrics)
    last: dict[int, tuple[float, float]] = {}
    ids = iter(range(1, 1_000_000))

    async def courier(user: int) -> None:
        for step in range(100):
            lat, lon = 52.5 + user / 10_000, 13.4 + step / 10_000
            last[user] = (lat, lon)
            await intake.keep([live_edit(next(ids), user, lat, lon)])
            await asyncio.sleep(0.02)  # 100 edits each over 2 s

    posted_during: list[bool] = []
    streaming = asyncio.gather(*(courier(user) for user in COURIERS))

    async def dispatcher() -> None:
        for n in range(20):
            await asyncio.sleep(0.08)
            view = await orders.post_order(
                harness.uow_factory(),
                DISPATCHER,
                DISPATCH_CHAT,
                district,
                f"parcel {n}",
                places=Places(PICKUP),
            )
            posted_during.append(not streaming.done() and view.courier_id is not None)

    await asyncio.gather(streaming, dispatcher())

    assert await kept(harness) == last
    written = metrics.positions.labels("written")._value.get()
    batches = metrics.position_batches._value.get()
    print(f"\n10,000 edits in {batches:.0f} writes")
    assert written == 10_000
    assert batches < 10_000 / 4  # coalesced: several edits a write, on either database
    assert posted_during.count(True) >= 15, posted_during  # dispatch answered meanwhile
    uow = harness.uow_factory()
    async with uow.read():
        stored = await uow.session.scalar(select(func.count()).select_from(InboxUpdate))
    assert stored == 0  # no live edit went through the inbox


async def test_a_stopped_live_location_no_longer_counts(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await register(harness, 8, "Bob", ["North"])
    await approve_all(harness)
    intake = intake_of(harness, Metrics())
    await intake.keep([live_edit(1, 7, PICKUP.lat, PICKUP.lon)])
    await intake.keep([live_edit(2, 8, PICKUP.lat + 0.05, PICKUP.lon)])
    await intake.keep([live_edit(3, 7, PICKUP.lat, PICKUP.lon, live=False)])
    view = await orders.post_order(
        harness.uow_factory(), DISPATCHER, DISPATCH_CHAT, 1, "soup", places=Places(PICKUP)
    )
    assert view.courier_name == "Bob"
    delivered = await harness.deliver()
    (told,) = texts(delivered, DISPATCH_CHAT)
    assert "went to Bob (#2), 5.6 km away" in told
    (venue,) = [r for r in delivered if isinstance(r, SendVenue)]
    assert (venue.chat_id, venue.latitude) == (8, PICKUP.lat)


async def test_a_position_no_database_takes_sinks_no_other(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await approve_all(harness)
    intake = intake_of(harness, Metrics())
    forged = live_edit(1, 2**64, 1.0, 1.0)  # no Telegram id is this large
    await asyncio.gather(
        intake.keep([forged]),
        intake.keep([live_edit(2, 7, PICKUP.lat, PICKUP.lon)]),
    )
    uow = harness.uow_factory()
    async with uow.read():
        assert await uow.session.scalar(select(func.count()).select_from(CourierPosition)) == 1
