"""The seed's endpoints, each success and each error, on SQLite and PostgreSQL."""

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import httpx
import pytest

from db.uow import UnitOfWorkFactory
from services import orders
from tests.api.conftest import OTHER_TOKEN, client_of
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

NOBODY = str(uuid4())


async def district(api: httpx.AsyncClient, name: str) -> dict:
    response = await api.post("/courier/create_district", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def courier(api: httpx.AsyncClient, name: str, *districts: str) -> dict:
    response = await api.post("/courier", json={"name": name, "districts": list(districts)})
    assert response.status_code == 201, response.text
    return response.json()


def assert_detail(response: httpx.Response, detail: str | list[str]) -> None:
    """The service's sentence, or (given a field's place) the schema's refusal of that field."""
    if isinstance(detail, str):
        assert response.json() == {"detail": detail}
    else:
        assert response.json()["detail"][0]["loc"] == detail


# Auth


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer wrong-token-0123456789",
        "Basic " + "x" * 20,
        "bearer",
        f"Token {OTHER_TOKEN}",
    ],
)
async def test_every_endpoint_wants_a_valid_bearer_token(
    uow_factory: UnitOfWorkFactory, header: str | None
):
    async with client_of(uow_factory, token=None) as anonymous:
        headers = {"Authorization": header} if header else {}
        for method, path in [
            ("GET", "/courier"),
            ("POST", "/courier"),
            ("GET", f"/courier/{NOBODY}"),
            ("GET", "/courier/get_districts"),
            ("POST", "/courier/create_district"),
            ("POST", "/order"),
            ("GET", f"/order/{NOBODY}"),
            ("POST", f"/order/{NOBODY}"),
        ]:
            response = await anonymous.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["detail"]


async def test_any_of_the_tokens_is_accepted(uow_factory: UnitOfWorkFactory):
    async with client_of(uow_factory, token=OTHER_TOKEN) as second:
        assert (await second.get("/courier")).status_code == 200


# Districts


async def test_districts_are_created_and_listed(api: httpx.AsyncClient):
    north = await district(api, "  North  ")
    assert north["name"] == "North"
    UUID(north["sid"])

    duplicate = await api.post("/courier/create_district", json={"name": "NORTH"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "district NORTH already exists"}
    for bad in ["", "   ", "x" * 65]:  # what the schema says no to
        invalid = await api.post("/courier/create_district", json={"name": bad})
        assert invalid.status_code == 422
        assert invalid.json()["detail"][0]["loc"] == ["body", "name"]
    invisible = await api.post("/courier/create_district", json={"name": "\u200b\u2060"})
    assert invisible.status_code == 422
    assert invisible.json() == {"detail": "name: 1 to 64 visible characters"}

    listed = await api.get("/courier/get_districts")
    assert listed.status_code == 200
    assert listed.json() == [north]


# Couriers


async def test_a_courier_is_created_with_a_telegram_link(api: httpx.AsyncClient):
    await district(api, "North")
    await district(api, "South")

    created = await courier(api, "Ann", "north", "South")

    assert created["name"] == "Ann"
    assert created["districts"] == ["North", "South"]
    assert created["telegram_link"].startswith("https://t.me/dispatch_bot?start=")
    assert len(created["telegram_link"].split("start=")[1]) >= 16


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"name": "Ann", "districts": ["North", "Atlantis", "Mu"]},
            "unknown districts: Atlantis, Mu",
        ),
        ({"name": "Ann", "districts": []}, ["body", "districts"]),
        ({"name": "", "districts": ["North"]}, ["body", "name"]),
        ({"name": "\x00\u202e", "districts": ["North"]}, "name: 1 to 64 visible characters"),
    ],
)
async def test_bad_couriers_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, body: dict, detail: str | list[str]
):
    await district(api, "North")
    response = await api.post("/courier", json=body)
    assert response.status_code == 422
    assert_detail(response, detail)
    assert (await api.get("/courier")).json() == []


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": 5, "districts": ["North"]}',
        b'{"name": "Ann", "districts": "North"}',
        b'{"name": "Ann", "districts": ["North"], "extra": 1}',
        b"not json at all",
        b"",
        b'{"name": "Ann"}',
    ],
)
async def test_malformed_bodies_get_422(api: httpx.AsyncClient, content: bytes):
    await district(api, "North")
    response = await api.post(
        "/courier", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "detail" in response.json()


async def test_a_ten_megabyte_name_is_refused_before_it_is_read(api: httpx.AsyncClient):
    response = await api.post("/courier", json={"name": "x" * 10_000_000, "districts": ["North"]})
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is over 64 KiB"}


async def test_a_streamed_body_is_cut_off_at_64_kib(api: httpx.AsyncClient):
    """Sent in chunks, with no Content-Length to refuse it by."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'", "districts": []}'

    response = await api.post(
        "/courier", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is over 64 KiB"}
    assert (await api.get("/courier")).json() == []


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"name": "\\ud800", "districts": ["North"]}', 422),  # a lone surrogate
        (b'{"name": NaN, "districts": ["North"]}', 422),
        (b'{"name": "Ann", "districts": ["North"], "queue": 1e999}', 422),  # infinity
        (b'{"name": "\xff\xfe", "districts": ["North"]}', 400),  # not UTF-8
        (b'{"name": ' + b"9" * 5000 + b"}", 400),  # more digits than a number may have
        (b"[" * 30_000 + b"]" * 30_000, 400),  # deeper than the parser goes
    ],
)
async def test_input_no_parser_can_echo_gets_a_4xx_in_json(
    api: httpx.AsyncClient, content: bytes, status: int
):
    await district(api, "North")
    response = await api.post(
        "/courier", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()
    assert (await api.get("/courier")).json() == []


@pytest.mark.parametrize(
    "how",
    [
        {"content": b"name=Ann", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"content": b'{"name": "Ann"}', "headers": {"content-type": "text/plain"}},
        {"content": b'{"name": "Ann"}', "headers": {}},
    ],
)
async def test_a_body_that_is_not_json_gets_415(api: httpx.AsyncClient, how: dict[str, object]):
    response = await api.post("/courier/create_district", **how)  # type: ignore[arg-type]
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["detail"]
    assert (await api.get("/courier/get_districts")).json() == []


async def test_without_a_token_nothing_of_the_body_matters(uow_factory: UnitOfWorkFactory):
    async with client_of(uow_factory, token=None) as anonymous:
        for content, kind in [
            (b"x" * 10_000_000, "application/json"),
            (b"not json", "application/json"),
            (b"name=Ann", "application/x-www-form-urlencoded"),
        ]:
            response = await anonymous.post(
                "/courier", content=content, headers={"content-type": kind}
            )
            assert response.status_code == 401, response.text
            assert "token" in response.json()["detail"]


async def test_no_redirect_is_built_from_the_host_header(api: httpx.AsyncClient):
    response = await api.get("/courier/", headers={"host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_couriers_are_listed_in_pages(api: httpx.AsyncClient):
    await district(api, "North")
    made = [await courier(api, f"C{n}", "North") for n in range(5)]

    everyone = (await api.get("/courier")).json()
    page = (await api.get("/courier", params={"limit": 2, "offset": 3})).json()

    assert everyone == [{"sid": c["sid"], "name": c["name"]} for c in made]
    assert page == everyone[3:5]
    for params in [{"limit": 1001}, {"limit": 0}, {"limit": -1}, {"offset": -1}, {"limit": "x"}]:
        assert (await api.get("/courier", params=params)).status_code == 422, params


async def test_a_courier_card(api: httpx.AsyncClient):
    await district(api, "North")
    ann = await courier(api, "Ann", "North")

    card = await api.get(f"/courier/{ann['sid']}")

    assert card.status_code == 200
    assert card.json() == {
        "sid": ann["sid"],
        "name": "Ann",
        "districts": ["North"],
        "active_order": None,
        "avg_order_complete_time": None,
        "avg_day_orders": None,
        "acceptance_rate": None,  # added since the seed (courier offers)
        "location": None,  # added since the seed (where couriers are)
    }
    assert (await api.get(f"/courier/{NOBODY}")).status_code == 404
    assert (await api.get("/courier/not-a-uuid")).status_code == 422
    assert (await api.get("/courier/12")).status_code == 422


# Orders


async def test_an_order_goes_to_a_free_courier_and_is_completed(api: httpx.AsyncClient):
    await district(api, "North")
    ann = await courier(api, "Ann", "North")

    posted = await api.post("/order", json={"name": "2 pizzas", "district": "north"})

    assert posted.status_code == 201
    assert posted.json()["courier_sid"] == ann["sid"]
    order_sid = posted.json()["order_sid"]
    order = (await api.get(f"/order/{order_sid}")).json()
    assert order["status"] == "1"
    assert order["state"] == "in_progress"
    assert order["courier_sid"] == ann["sid"]
    card = (await api.get(f"/courier/{ann['sid']}")).json()
    assert card["active_order"]["sid"] == order_sid
    assert card["active_order"]["name"] == "2 pizzas"

    done = await api.post(f"/order/{order_sid}")

    assert done.status_code == 200
    assert done.json()["status"] == "2"
    assert done.json()["state"] == "completed"
    assert done.json()["completed_at"] is not None
    again = await api.post(f"/order/{order_sid}")
    assert again.status_code == 409
    assert again.json() == {"detail": "the order is already completed"}
    card = (await api.get(f"/courier/{ann['sid']}")).json()
    assert card["active_order"] is None
    assert card["avg_order_complete_time"].startswith("PT")
    assert card["avg_day_orders"] == 1.0


async def test_with_nobody_free_an_order_is_refused_unless_it_may_wait(api: httpx.AsyncClient):
    await district(api, "North")

    refused = await api.post("/order", json={"name": "soup", "district": "North"})

    assert refused.status_code == 409
    assert "nothing was stored" in refused.json()["detail"]
    queued = await api.post("/order", json={"name": "soup", "district": "North", "queue": True})
    second = await api.post("/order", json={"name": "tea", "district": "North", "queue": True})
    assert queued.status_code == 202
    assert queued.json()["status"] == "0"
    assert queued.json()["place"] == 1
    assert second.json()["place"] == 2
    waiting = (await api.get(f"/order/{queued.json()['order_sid']}")).json()
    assert (waiting["status"], waiting["state"], waiting["courier_sid"]) == ("0", "queued", None)
    early = await api.post(f"/order/{queued.json()['order_sid']}")
    assert early.status_code == 409

    ann = await courier(api, "Ann", "North")  # a courier comes: the oldest goes to them
    assert (await api.get(f"/order/{queued.json()['order_sid']}")).json()["courier_sid"] == ann[
        "sid"
    ]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"name": "soup", "district": "Atlantis"}, 422, "unknown district: Atlantis"),
        ({"name": "", "district": "North"}, 422, ["body", "name"]),
        ({"name": "x" * 1001, "district": "North"}, 422, ["body", "name"]),
        ({"name": "\u200b\u202e", "district": "North"}, 422, "name: 1 to 1000 characters"),
    ],
)
async def test_bad_orders_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, desk: Desk, body: dict, status: int, detail: str | list[str]
):
    await district(api, "North")
    response = await api.post("/order", json=body | {"queue": True})
    assert response.status_code == status
    assert_detail(response, detail)
    assert (await desk(orders.active_orders, DISPATCHER, 0, 10)).total == 0


async def test_queue_must_be_a_true_boolean(api: httpx.AsyncClient, desk: Desk):
    await district(api, "North")
    response = await api.post("/order", json={"name": "soup", "district": "North", "queue": "yes"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "queue"]
    assert (await desk(orders.active_orders, DISPATCHER, 0, 10)).total == 0


async def test_unknown_and_malformed_order_ids(api: httpx.AsyncClient):
    assert (await api.get(f"/order/{NOBODY}")).status_code == 404
    assert (await api.post(f"/order/{NOBODY}")).json() == {"detail": "no such order"}
    assert (await api.get("/order/12")).status_code == 422
    assert (await api.post("/order/" + "f" * 5000)).status_code == 422


async def test_orders_of_the_bot_and_of_shops_are_one_dispatch(api: httpx.AsyncClient, desk: Desk):
    await district(api, "North")
    posted_in_telegram = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North tea")
    ann = await courier(api, "Ann", "North")  # created over HTTP, takes the waiting order

    card = (await api.get(f"/courier/{ann['sid']}")).json()

    # The shop sees that Ann is busy, but not with what: the order is the dispatcher's.
    assert card["active_order"] is None
    mine = await desk(orders.order_status, DISPATCHER, posted_in_telegram.sid)
    assert mine.courier_sid == UUID(ann["sid"])
    by_shop = (
        await api.post("/order", json={"name": "soup", "district": "North", "queue": True})
    ).json()
    status = await desk(orders.order_status, DISPATCHER, UUID(by_shop["order_sid"]))
    assert status.source == "api"
    assert status.dispatcher_chat_id is None
