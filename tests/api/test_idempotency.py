"""`Idempotency-Key`: a retried POST gets the first answer and does nothing twice, on SQLite
and PostgreSQL."""

import asyncio
import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from db.models import Order
from db.uow import UnitOfWorkFactory
from services import couriers, idempotency, orders, shops
from tests.api.conftest import OTHER_TOKEN, TOKEN, client_of
from tests.api.test_contract import courier, district
from tests.conftest import FakeClock


async def orders_stored(uow_factory: UnitOfWorkFactory) -> int:
    uow = uow_factory()
    async with uow.read():
        return int(await uow.session.scalar(select(func.count()).select_from(Order)) or 0)


SHOP = hashlib.sha256(TOKEN.encode()).hexdigest()[:32]  # the key's owner: the token's digest


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def test_twenty_concurrent_retries_make_one_order(
    api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory
):
    await district(api, "North")
    await courier(api, "Ann", "North")
    body = {"name": "soup", "district": "North"}

    answers = await asyncio.gather(
        *(api.post("/order", json=body, headers=keyed("order-1")) for _ in range(20))
    )

    assert await orders_stored(uow_factory) == 1
    done = [a for a in answers if a.status_code == 201]
    assert done, [a.text for a in answers]
    assert {a.text for a in done} == {done[0].text}
    assert all(a.status_code in (201, 409) for a in answers)
    again = await api.post("/order", json=body, headers=keyed("order-1"))
    assert (again.status_code, again.text) == (201, done[0].text)
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_the_same_key_with_another_body_is_refused(
    api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory
):
    await district(api, "North")
    first = await api.post(
        "/order", json={"name": "soup", "district": "North", "queue": True}, headers=keyed("k")
    )
    other = await api.post(
        "/order", json={"name": "tea", "district": "North", "queue": True}, headers=keyed("k")
    )

    assert first.status_code == 202
    assert other.status_code == 422
    assert "another request" in other.json()["detail"]
    assert await orders_stored(uow_factory) == 1


async def test_no_courier_free_is_not_kept_so_a_retry_can_succeed(
    api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory
):
    await district(api, "North")
    body = {"name": "soup", "district": "North"}
    busy = await api.post("/order", json=body, headers=keyed("retry-me"))
    await courier(api, "Ann", "North")
    retried = await api.post("/order", json=body, headers=keyed("retry-me"))

    assert busy.status_code == 409
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


async def test_keys_are_each_shops_own(api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory):
    await district(api, "North")
    body = {"name": "soup", "district": "North", "queue": True}
    async with client_of(uow_factory, OTHER_TOKEN) as other_shop:
        mine = await api.post("/order", json=body, headers=keyed("same"))
        theirs = await other_shop.post("/order", json=body, headers=keyed("same"))

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["order_sid"] != theirs.json()["order_sid"]


async def test_a_request_that_died_after_its_work_is_answered_from_it(
    api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    """The first request posted the order and its process died before the answer was kept:
    the retry, once the key's lease is over, finds the order and posts nothing."""
    await district(api, "North")
    await courier(api, "Ann", "North")
    body = {"name": "soup", "district": "North"}
    shop = SHOP
    content = api.build_request("POST", "/order", json=body).content
    digest = hashlib.sha256(b"POST /order\n" + content).hexdigest()
    running = await idempotency.begin(uow_factory(), shop, "died", digest, timedelta(seconds=60))
    assert isinstance(running, idempotency.Running)
    posted = await orders.post_order_for_shop(
        uow_factory(idempotency.stamp(running)),
        await shops.unnamed(uow_factory()),
        "North",
        "soup",
        queue=False,
        source=f"key:{shop}:died",
    )

    busy = await api.post("/order", json=body, headers=keyed("died"))
    fake_clock.advance(seconds=61)
    retried = await api.post("/order", json=body, headers=keyed("died"))

    assert busy.status_code == 409
    assert retried.status_code == 201
    assert retried.json()["order_sid"] == str(posted.sid)
    assert await orders_stored(uow_factory) == 1


async def test_any_other_request_that_died_after_its_work_is_not_done_again(
    api: httpx.AsyncClient, uow_factory: UnitOfWorkFactory, fake_clock: FakeClock
):
    """Creating a courier cannot find its own earlier work: a retry after its first run died
    past its commit is refused, never a second courier."""
    await district(api, "North")
    body = {"name": "Ann", "districts": ["North"]}
    content = api.build_request("POST", "/courier", json=body).content
    digest = hashlib.sha256(b"POST /courier\n" + content).hexdigest()
    running = await idempotency.begin(uow_factory(), SHOP, "died", digest, timedelta(seconds=60))
    assert isinstance(running, idempotency.Running)
    shop = await shops.unnamed(uow_factory())
    await couriers.create_courier(uow_factory(idempotency.stamp(running)), shop, "Ann", ["North"])
    fake_clock.advance(seconds=61)

    retried = await api.post("/courier", json=body, headers=keyed("died"))

    assert retried.status_code == 409
    assert "answer was lost" in retried.json()["detail"]
    assert len((await api.get("/courier")).json()) == 1


async def test_a_malformed_key_is_refused_and_the_header_is_documented(api: httpx.AsyncClient):
    await district(api, "North")
    refused = await api.post(
        "/order", json={"name": "x", "district": "North"}, headers=keyed("k" * 256)
    )
    schema = (await api.get("/openapi.json")).json()

    assert refused.status_code == 422
    parameters = schema["paths"]["/order"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in parameters)
