"""Shops over HTTP: each sees, completes and cancels only its own orders; its orders listed
a page at a time. On SQLite and PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from db.uow import UnitOfWorkFactory
from services import clock, orders, shops
from tests.api.conftest import client_of
from tests.api.test_contract import courier, district
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk


@pytest.fixture
async def alpha(uow_factory: UnitOfWorkFactory) -> AsyncIterator[httpx.AsyncClient]:
    _, token = await shops.add_token(uow_factory(), "Alpha")
    async with client_of(uow_factory, token) as client:
        yield client


@pytest.fixture
async def beta(uow_factory: UnitOfWorkFactory) -> AsyncIterator[httpx.AsyncClient]:
    _, token = await shops.add_token(uow_factory(), "Beta")
    async with client_of(uow_factory, token) as client:
        yield client


async def post(api: httpx.AsyncClient, name: str, district: str = "North") -> dict[str, Any]:
    response = await api.post("/order", json={"name": name, "district": district, "queue": True})
    assert response.status_code in (201, 202), response.text
    return response.json()


async def everything(desk: Desk, sids: list[str]) -> list[object]:
    """What the dispatchers see of these orders, and every notice written."""
    seen: list[object] = [await desk(orders.order_status, DISPATCHER, UUID(s)) for s in sids]
    return [*seen, await desk.outbox()]


async def test_a_shop_finds_no_order_but_its_own(
    api: httpx.AsyncClient, alpha: httpx.AsyncClient, beta: httpx.AsyncClient, desk: Desk
):
    await district(api, "North")
    ann = await courier(api, "Ann", "North")
    await courier(api, "Bob", "North")
    of_alpha = (await post(alpha, "soup"))["order_sid"]
    of_telegram = str(
        (await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North tea")).sid
    )
    of_unnamed = (await post(api, "bread"))["order_sid"]
    before = await everything(desk, [of_alpha, of_telegram, of_unnamed])

    for sid in (of_alpha, of_telegram, of_unnamed):
        for method, path in [
            ("GET", f"/order/{sid}"),
            ("POST", f"/order/{sid}"),
            ("POST", f"/order/{sid}/cancel"),
        ]:
            response = await beta.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json() == {"detail": "no such order"}
    listed = await beta.get("/order")
    card = await beta.get(f"/courier/{ann['sid']}")

    assert listed.json() == {"items": [], "next_cursor": None}
    assert card.json()["active_order"] is None  # Ann carries Alpha's soup
    assert (await alpha.get(f"/courier/{ann['sid']}")).json()["active_order"]["sid"] == of_alpha
    assert await everything(desk, [of_alpha, of_telegram, of_unnamed]) == before
    assert (await alpha.post(f"/order/{of_alpha}")).json()["status"] == "2"


async def test_a_revoked_shop_is_let_in_no_more(
    uow_factory: UnitOfWorkFactory, alpha: httpx.AsyncClient
):
    assert (await alpha.get("/order")).status_code == 200
    assert await shops.revoke(uow_factory(), "alpha") == ("Alpha", 1)

    refused = await alpha.get("/order")

    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_idempotency_keys_are_the_shops_own(
    api: httpx.AsyncClient, alpha: httpx.AsyncClient, beta: httpx.AsyncClient
):
    await district(api, "North")
    body = {"name": "soup", "district": "North", "queue": True}
    key = {"Idempotency-Key": "order-1"}

    first = await alpha.post("/order", json=body, headers=key)
    again = await alpha.post("/order", json=body, headers=key)
    other = await beta.post("/order", json=body, headers=key)

    assert again.json() == first.json()
    assert other.json()["order_sid"] != first.json()["order_sid"]


async def test_a_shop_cancels_its_order_and_the_courier_takes_the_next(
    api: httpx.AsyncClient, alpha: httpx.AsyncClient
):
    await district(api, "North")
    ann = await courier(api, "Ann", "North")
    first = (await post(alpha, "soup"))["order_sid"]
    waiting = (await post(alpha, "tea"))["order_sid"]

    cancelled = await alpha.post(f"/order/{first}/cancel")
    again = await alpha.post(f"/order/{first}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "3"
    assert cancelled.json()["cancelled_at"] is not None
    assert (await alpha.get(f"/order/{waiting}")).json()["courier_sid"] == ann["sid"]
    assert again.status_code == 409
    assert again.json() == {"detail": "the order was cancelled"}


async def test_two_shop_calls_racing_to_complete_get_one_answer_each(
    api: httpx.AsyncClient, alpha: httpx.AsyncClient
):
    await district(api, "North")
    await courier(api, "Ann", "North")
    sid = (await post(alpha, "soup"))["order_sid"]

    answers = await asyncio.gather(*(alpha.post(f"/order/{sid}") for _ in range(4)))

    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    refusals = {a.json()["detail"] for a in answers if a.status_code == 409}
    assert refusals == {"the order is already completed"}


async def test_orders_are_listed_a_page_at_a_time(api: httpx.AsyncClient, alpha: httpx.AsyncClient):
    await district(api, "North")
    await district(api, "South")
    await courier(api, "Ann", "North")
    sids = [(await post(alpha, f"parcel {n}"))["order_sid"] for n in range(5)]
    south = (await post(alpha, "far", "South"))["order_sid"]

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await alpha.get("/order", params=params)).json()
        seen += [order["sid"] for order in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [*sids, south]
    queued = (await alpha.get("/order", params={"status": "0", "district": "North"})).json()
    assert [o["sid"] for o in queued["items"]] == sids[1:]
    assert {o["state"] for o in queued["items"]} == {"queued"}
    later = clock.utcnow() + timedelta(minutes=1)
    assert (await alpha.get("/order", params={"since": later.isoformat()})).json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "-1"},
        {"status": "7"},
        {"since": "yesterday"},
        {"since": "1733220000"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"since": "9999-12-31T23:59:59-01:00"},
        {"limit": 0},
    ],
)
async def test_bad_filters_get_422(alpha: httpx.AsyncClient, params: dict):
    response = await alpha.get("/order", params=params)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


async def test_a_district_that_does_not_exist_has_no_orders(alpha: httpx.AsyncClient):
    response = await alpha.get("/order", params={"district": "Atlantis"})

    assert response.json() == {"items": [], "next_cursor": None}
