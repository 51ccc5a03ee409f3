"""Where couriers are, on both databases: positions kept during a shift only, and orders
going to the nearest free courier with a fresh position."""

import math
import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import CourierPosition, Point
from db.uow import DispatchRules, UnitOfWork, UnitOfWorkFactory
from services import couriers, geo, offers, orders, positions
from services.dispatching import nearest_free
from services.orders import Places
from services.positions import Fix
from services.read_models import OrderView
from tests.conftest import FakeClock
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

UTC_ZONE = ZoneInfo("UTC")
PICKUP = Point(52.5200, 13.4050, "Alexanderplatz")  # Berlin
FRESH = 600


def rules(**changes: object) -> DispatchRules:
    return DispatchRules(**{"location_fresh_seconds": FRESH, **changes})  # type: ignore[arg-type]


@pytest.fixture
def desk(engine: AsyncEngine) -> Desk:
    return Desk(UnitOfWorkFactory(engine, rules=rules()))


@pytest.fixture
async def districts(desk: Desk, fake_clock: FakeClock) -> dict[str, int]:
    await desk.staff_up()
    return await desk.add_districts("North", "South")


@pytest.fixture
def north(districts: dict[str, int]) -> int:
    return districts["North"]


def east_of(point: Point, metres: float) -> Point:
    """A point `metres` due east (along the parallel, near enough for a few km)."""
    degrees = metres / (111_320 * math.cos(math.radians(point.lat)))
    return Point(point.lat, (point.lon + degrees + 180) % 360 - 180)


async def courier_at(
    desk: Desk, clock: FakeClock, telegram_id: int, district: int, where: Point | None
) -> int:
    courier_id = await desk.add_courier(telegram_id, [district])
    clock.advance(seconds=1)  # each free from a moment of their own
    if where is not None:
        await desk(positions.record, [Fix(telegram_id, where.lat, where.lon, clock.now)])
    return courier_id


async def post(desk: Desk, district: int, pickup: Point | None = PICKUP) -> OrderView:
    return await desk(
        orders.post_order,
        DISPATCHER,
        DISPATCH_CHAT,
        district,
        "parcel",
        places=Places(pickup=pickup),
    )


async def posted_distance(desk: Desk) -> float | None:
    told = [p for _, kind, p in await desk.outbox() if kind == "order_posted"]
    return told[-1]["distance_m"]


async def test_the_nearest_free_courier_gets_the_order(
    desk: Desk, north: int, fake_clock: FakeClock
):
    far = await courier_at(desk, fake_clock, 11, north, east_of(PICKUP, 3000))
    near = await courier_at(desk, fake_clock, 12, north, east_of(PICKUP, 1200))
    await courier_at(desk, fake_clock, 13, north, east_of(PICKUP, 2000))

    first = await post(desk, north)
    assert first.courier_id == near
    assert first.pickup == PICKUP
    assert await posted_distance(desk) == pytest.approx(1200, rel=0.01)
    # The next order: the nearest of those still free.
    assert (await post(desk, north)).courier_id != far
    assert (await post(desk, north)).courier_id == far


async def test_the_courier_gets_the_places_as_venues(desk: Desk, north: int, fake_clock: FakeClock):
    await courier_at(desk, fake_clock, 11, north, east_of(PICKUP, 500))
    dropoff = Point(52.5300, 13.4200)
    await desk(
        orders.post_order,
        DISPATCHER,
        DISPATCH_CHAT,
        north,
        "parcel",
        places=Places(PICKUP, dropoff),
    )
    to_courier = [(kind, p) for chat, kind, p in await desk.outbox() if chat == 11]
    assert [kind for kind, _ in to_courier] == ["order_assigned", "order_place", "order_place"]
    pickup, drop = (p for _, p in to_courier[1:])
    assert (pickup["role"], pickup["address"], pickup["lat"]) == ("pickup", PICKUP.address, 52.52)
    assert (drop["role"], drop["address"], drop["lon"]) == ("dropoff", None, 13.42)


async def test_stale_and_missing_positions_rank_after_fresh_ones(
    desk: Desk, north: int, fake_clock: FakeClock
):
    nowhere = await courier_at(desk, fake_clock, 11, north, None)  # free the longest
    stale = await courier_at(desk, fake_clock, 12, north, east_of(PICKUP, 100))
    fake_clock.advance(seconds=FRESH - 60)
    fresh = await courier_at(desk, fake_clock, 13, north, east_of(PICKUP, 5000))
    fake_clock.advance(seconds=61)  # the one-time location of courier 12 no longer counts

    assert (await post(desk, north)).courier_id == fresh
    # Nobody fresh is left: free the longest first, as without locations.
    assert (await post(desk, north)).courier_id == nowhere
    assert await posted_distance(desk) is None
    assert (await post(desk, north)).courier_id == stale


async def test_a_live_location_counts_while_its_edits_come_and_not_after_it_ends(
    desk: Desk, north: int, fake_clock: FakeClock
):
    sharing = await courier_at(desk, fake_clock, 11, north, None)
    other = await courier_at(desk, fake_clock, 12, north, east_of(PICKUP, 4000))
    started = fake_clock.now
    live = Fix(11, PICKUP.lat, PICKUP.lon, started, live_until=started + timedelta(hours=1))
    await desk(positions.share, live)
    for minute in range(1, 30, 9):  # an edit every few minutes keeps it fresh past FRESH
        fake_clock.advance(minutes=9)
        moved = east_of(PICKUP, 10 * minute)
        edit = Fix(11, moved.lat, moved.lon, fake_clock.now, live.live_until)
        await desk(positions.record, [edit])
    card = await desk(couriers.courier_card, DISPATCHER, sharing, UTC_ZONE)
    assert card.position is not None
    assert card.position.live_until == live.live_until
    assert card.position.fresh(fake_clock.now)

    far = east_of(PICKUP, 4000)
    stopped = Fix(11, PICKUP.lat, PICKUP.lon, fake_clock.now, stopped=True)
    await desk(positions.record, [stopped, Fix(12, far.lat, far.lon, fake_clock.now)])
    assert (await post(desk, north)).courier_id == other


async def test_a_live_location_past_its_period_no_longer_counts(
    desk: Desk, north: int, fake_clock: FakeClock
):
    await courier_at(desk, fake_clock, 11, north, None)
    other = await courier_at(desk, fake_clock, 12, north, east_of(PICKUP, 4000))
    until = fake_clock.now + timedelta(minutes=2)
    await desk(positions.share, Fix(11, PICKUP.lat, PICKUP.lon, fake_clock.now, until))
    fake_clock.advance(minutes=2)
    assert (await post(desk, north)).courier_id == other


async def test_across_the_antimeridian(desk: Desk, north: int, fake_clock: FakeClock):
    pickup = Point(-16.5, 179.999)  # Fiji
    await courier_at(desk, fake_clock, 11, north, Point(-16.5, 179.9))  # 10.7 km west
    across = await courier_at(desk, fake_clock, 12, north, Point(-16.5, -179.999))  # 213 m east
    assert (await post(desk, north, pickup)).courier_id == across
    assert await posted_distance(desk) == pytest.approx(213, abs=2)


async def test_only_couriers_of_the_orders_district(
    desk: Desk, districts: dict[str, int], fake_clock: FakeClock
):
    north, south = districts["North"], districts["South"]
    await courier_at(desk, fake_clock, 11, south, PICKUP)  # right there, of the next district
    both = await desk.add_courier(12, [north, south])
    await desk(positions.record, [Fix(12, PICKUP.lat, PICKUP.lon + 0.01, fake_clock.now)])
    mine = await courier_at(desk, fake_clock, 13, north, east_of(PICKUP, 100))
    assert (await post(desk, north)).courier_id == mine
    assert (await post(desk, north)).courier_id == both
    assert (await post(desk, north)).courier_id is None  # courier 11 is not North's


async def test_ties_go_the_same_way_every_time(desk: Desk, north: int, fake_clock: FakeClock):
    spot = east_of(PICKUP, 700)
    first = await courier_at(desk, fake_clock, 11, north, spot)  # free the longest
    second = await courier_at(desk, fake_clock, 12, north, spot)
    got = [(await post(desk, north)).courier_id for _ in range(2)]
    assert got == [first, second]


async def test_without_points_or_with_the_longest_free_rule_positions_are_not_used(
    engine: AsyncEngine, desk: Desk, north: int, fake_clock: FakeClock
):
    longest = await courier_at(desk, fake_clock, 11, north, east_of(PICKUP, 9000))
    next_longest = await courier_at(desk, fake_clock, 12, north, east_of(PICKUP, 5000))
    await courier_at(desk, fake_clock, 13, north, PICKUP)
    assert (await post(desk, north, pickup=None)).courier_id == longest
    assert await posted_distance(desk) is None

    plain = Desk(UnitOfWorkFactory(engine, rules=rules(nearest=False)))
    assert (await post(plain, north)).courier_id == next_longest


async def test_offers_follow_the_same_ranking(
    engine: AsyncEngine, north: int, fake_clock: FakeClock
):
    desk = Desk(UnitOfWorkFactory(engine, rules=rules(offer_seconds=60)))
    await courier_at(desk, fake_clock, 11, north, east_of(PICKUP, 3000))
    second = await courier_at(desk, fake_clock, 12, north, east_of(PICKUP, 2000))
    nearest = await courier_at(desk, fake_clock, 13, north, east_of(PICKUP, 1000))
    offered = await post(desk, north)
    assert offered.courier_id == nearest
    await desk(offers.decline_offer, 13, offered.id)
    assert (await desk(orders.order_status, DISPATCHER, offered.id)).courier_id == second


async def test_positions_are_kept_during_a_shift_only(
    desk: Desk, north: int, fake_clock: FakeClock
):
    courier = await courier_at(desk, fake_clock, 11, north, PICKUP)
    assert await stored(desk) == 1
    await desk(couriers.set_online, 11, False, UTC_ZONE)
    assert await stored(desk) == 0
    # Off shift, nothing is kept, whichever door it comes by.
    assert await desk(positions.record, [Fix(11, 1.0, 2.0, fake_clock.now)]) == 0
    assert await desk(positions.share, Fix(11, 1.0, 2.0, fake_clock.now)) is None
    assert await stored(desk) == 0
    card = await desk(couriers.courier_card, DISPATCHER, courier, UTC_ZONE)
    assert card.position is None
    # Strangers' positions are dropped too.
    assert await desk(positions.record, [Fix(999, 1.0, 2.0, fake_clock.now)]) == 0


async def test_one_written_as_the_shift_ends_is_erased_by_the_sweep(
    desk: Desk, north: int, fake_clock: FakeClock
):
    courier = await courier_at(desk, fake_clock, 11, north, None)
    await desk(couriers.set_online, 11, False, UTC_ZONE)
    uow = desk.uow_factory()
    async with uow.write():  # as a batch that read "on shift" a moment before would
        await uow.positions.write([positions_row(courier, fake_clock)])
        await uow.commit()
    assert await stored(desk) == 1
    assert await desk(positions.erase_off_shift) == 1
    assert await stored(desk) == 0


def positions_row(courier_id: int, clock: FakeClock) -> dict[str, object]:
    return {
        "courier_id": courier_id,
        "lat": PICKUP.lat,
        "lon": PICKUP.lon,
        "cell": geo.cell_of(PICKUP.lat, PICKUP.lon),
        "at": clock.now,
        "fresh_until": clock.now + timedelta(seconds=FRESH),
        "live_until": None,
    }


async def stored(desk: Desk) -> int:
    uow = desk.uow_factory()
    async with uow.read():
        return int(await uow.session.scalar(select(func.count(CourierPosition.courier_id))) or 0)


async def test_the_latest_position_wins_whatever_order_they_come_in(
    desk: Desk, north: int, fake_clock: FakeClock
):
    ids = list(range(100, 200))
    for telegram_id in ids:
        await desk.add_courier(telegram_id, [north])
    rng = random.Random(5)
    start = fake_clock.now
    edits = [
        Fix(telegram_id, rng.uniform(-80, 80), rng.uniform(-180, 180), start + timedelta(seconds=n))
        for n in range(100)
        for telegram_id in ids
    ]
    last = {fix.telegram_id: fix for fix in edits}
    rng.shuffle(edits)
    for batch in range(0, len(edits), 500):
        await desk(positions.record, edits[batch : batch + 500])
    uow = desk.uow_factory()
    async with uow.write():  # on_shift locks the couriers' rows
        kept = {
            row.courier_id: (row.lat, row.lon)
            for row in await uow.session.scalars(select(CourierPosition))
        }
        by_telegram = await uow.positions.on_shift(ids)
    assert {t: kept[by_telegram[t]] for t in ids} == {t: (f.lat, f.lon) for t, f in last.items()}


@pytest.mark.parametrize("spread_km", [3, 300, 20_000])
async def test_the_index_finds_what_reading_every_position_would(
    desk: Desk, north: int, fake_clock: FakeClock, spread_km: int
):
    """Against brute force, over a city, a country and the world."""
    rng = random.Random(spread_km)
    spots: dict[int, Point] = {}
    for telegram_id in range(100, 160):
        metres = rng.uniform(0, spread_km * 1000)
        spot = _towards(PICKUP, metres, rng.uniform(0, 360))
        spots[await courier_at(desk, fake_clock, telegram_id, north, spot)] = spot
    uow = desk.uow_factory()
    async with uow.read():
        for _ in range(20):
            target = _towards(PICKUP, rng.uniform(0, spread_km * 1000), rng.uniform(0, 360))
            found = await _nearest(uow, north, target, fake_clock)
            best = min(spots, key=lambda c: (geo.distance_m(target, spots[c]), c))
            assert found == best


async def _nearest(uow: UnitOfWork, district: int, target: Point, clock: FakeClock) -> int | None:
    found = await nearest_free(uow, district, target, clock.now, ())
    return None if found is None else found[0]


def _towards(start: Point, metres: float, bearing: float) -> Point:
    radius = 6_371_008.8
    lat1, lon1, angle = math.radians(start.lat), math.radians(start.lon), math.radians(bearing)
    d = metres / radius
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(angle))
    lon2 = lon1 + math.atan2(
        math.sin(angle) * math.sin(d) * math.cos(lat1),
        math.cos(d) - math.sin(lat1) * math.sin(lat2),
    )
    return Point(math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180)


async def test_of_two_positions_in_the_same_second_the_later_update_wins(
    desk: Desk, north: int, fake_clock: FakeClock
):
    courier = await courier_at(desk, fake_clock, 11, north, None)
    now = fake_clock.now
    later = Fix(11, 1.0, 1.0, now, update_id=10)
    await desk(positions.record, [later])
    await desk(positions.record, [Fix(11, 2.0, 2.0, now, update_id=9)])  # redelivered late
    await desk(positions.record, [Fix(11, 3.0, 3.0, now, update_id=12), later])
    card = await desk(couriers.courier_card, DISPATCHER, courier, UTC_ZONE)
    assert card.position is not None
    assert (card.position.lat, card.position.lon) == (3.0, 3.0)
