"""Points over HTTP, on both databases: pickup and drop-off validated, the order going to the
nearest courier, and where a courier is on their card."""

import math
from datetime import UTC, datetime

import httpx
import pytest

from db.uow import UnitOfWorkFactory
from services import positions, shops
from services.positions import Fix
from tests.api.conftest import client_of
from tests.helpers import Desk

PICKUP = {"lat": 52.52, "lon": 13.405, "address": "Rose & Co"}


async def couriers_near(desk: Desk, api: httpx.AsyncClient) -> dict[int, str]:
    """Three couriers of North in Telegram, 3, 1 and 2 km east of the pickup: their sids."""
    north = (await desk.add_districts("North"))["North"]
    sids = {}
    for telegram_id, metres in ((11, 3000), (12, 1000), (13, 2000)):
        await desk.add_courier(telegram_id, [north], name=f"C{telegram_id}")
        lon = PICKUP["lon"] + metres / (111_320 * math.cos(math.radians(PICKUP["lat"])))
        now = datetime.now(UTC)
        await desk(positions.record, [Fix(telegram_id, PICKUP["lat"], lon, now)])
        listing = (await api.get("/courier", params={"limit": 100})).json()
        sids[telegram_id] = next(c["sid"] for c in listing if c["name"] == f"C{telegram_id}")
    return sids


async def test_an_order_with_a_pickup_goes_to_the_nearest_courier(
    desk: Desk, api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory
):
    sids = await couriers_near(desk, api)
    body = {
        "name": "flowers",
        "district": "North",
        "pickup": PICKUP,
        "dropoff": {"lat": 52.53, "lon": 13.42},
    }
    posted = await api.post("/order", json=body)
    assert posted.status_code == 201, posted.text
    assert posted.json()["courier_sid"] == sids[12]
    order = (await api.get(f"/order/{posted.json()['order_sid']}")).json()
    assert order["pickup"] == PICKUP
    assert order["dropoff"] == {"lat": 52.53, "lon": 13.42, "address": None}

    card = (await api.get(f"/courier/{sids[12]}")).json()
    assert card["location"]["lat"] == PICKUP["lat"]
    assert set(card["location"]) == {"lat", "lon", "at"}
    # A courier carrying none of the shop's orders: where they are is not its business.
    assert (await api.get(f"/courier/{sids[13]}")).json()["location"] is None
    _, beta = await shops.add_token(uow_factory(), "Beta")
    async with client_of(uow_factory, beta) as other:
        assert (await other.get(f"/courier/{sids[12]}")).json()["location"] is None


@pytest.mark.parametrize(
    "point",
    [
        {"lat": 90.5, "lon": 0},
        {"lat": 0, "lon": -180.01},
        {"lat": "NaN", "lon": 0},
        {"lat": "52.5", "lon": 13.4},  # a number, not a text
        {"lat": True, "lon": 13.4},
        {"lat": 52.5},
        {"lat": 52.5, "lon": 13.4, "address": "x" * 257},
        {"lat": 52.5, "lon": 13.4, "altitude": 30},
        [52.5, 13.4],
    ],
)
async def test_points_out_of_range_or_malformed_get_422_and_post_nothing(
    desk: Desk, api: httpx.AsyncClient, point: object
):
    await desk.add_districts("North")
    for field in ("pickup", "dropoff"):
        response = await api.post(
            "/order", json={"name": "soup", "district": "North", "queue": True, field: point}
        )
        assert response.status_code == 422, response.text
        assert "52.5" not in response.text or point == [52.5, 13.4]  # no echo of the input
    assert (await api.get("/order")).json()["items"] == []


async def test_nan_in_the_body_itself_gets_a_clear_4xx(desk: Desk, api: httpx.AsyncClient):
    await desk.add_districts("North")
    body = b'{"name": "soup", "district": "North", "pickup": {"lat": NaN, "lon": 1}}'
    response = await api.post("/order", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert (await api.get("/order")).json()["items"] == []


async def test_an_address_is_kept_clean(desk: Desk, api: httpx.AsyncClient):
    await desk.add_districts("North")
    place = {"lat": -33.86, "lon": 151.21, "address": " Opera\u202e House\n\x00 Sydney "}
    body = {"name": "soup", "district": "North", "queue": True, "pickup": place}
    posted = await api.post("/order", json=body)
    assert posted.status_code == 202, posted.text
    order = (await api.get(f"/order/{posted.json()['order_sid']}")).json()
    assert order["pickup"]["address"] == "Opera House Sydney"
