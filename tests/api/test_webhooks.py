"""/webhooks: registering, listing, deleting and the delivery log; where a webhook may not
go; a shop's endpoint disabled after 3 days of failures, and the shop told. Both databases."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import httpx
import pytest

from db.uow import UnitOfWorkFactory
from services import shops, webhooks
from services.webhooks import Outcome, RetryPolicy
from tests.api.conftest import client_of
from tests.api.test_contract import courier, district
from tests.conftest import FakeClock

RECEIVER = "https://93.184.216.34/hooks"  # an address on the internet: no DNS asked


@pytest.fixture
async def alpha(uow_factory: UnitOfWorkFactory) -> AsyncIterator[httpx.AsyncClient]:
    _, token = await shops.add_token(uow_factory(), "Alpha")
    async with client_of(uow_factory, token) as client:
        yield client


async def register(api: httpx.AsyncClient, **body: object) -> dict:
    response = await api.post("/webhooks", json={"url": RECEIVER} | body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_endpoint_is_registered_with_its_secret_shown_once(alpha: httpx.AsyncClient):
    made = await register(alpha, events=["order.completed", "order.assigned"])

    listed = (await alpha.get("/webhooks")).json()

    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["order.assigned", "order.completed"]
    assert listed == [{k: v for k, v in made.items() if k != "secret"}]
    assert (await register(alpha))["events"] is None  # every event


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.1.2.3/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://0.0.0.0/hook", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/", "loopback"),  # NAT64 to 169.254.169.254
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4
        ("http://[::7f00:1]/", "loopback"),  # IPv4-compatible
        ("http://[::ffff:0:a9fe:a9fe]/", "loopback"),  # IPv4-translated (SIIT)
        ("http://shop.invalid/hook", "url: its host does not resolve"),
        ("https://93.184.216.34:99999/", "url: it is not a URL"),
    ],
)
async def test_a_webhook_may_not_point_inside(alpha: httpx.AsyncClient, url: str, detail: str):
    response = await alpha.post("/webhooks", json={"url": url})

    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert (await alpha.get("/webhooks")).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://93.184.216.34/"},
        {"url": "93.184.216.34"},
        {"url": "https://user:pw@93.184.216.34/"},
        {"url": RECEIVER, "events": ["order.eaten"]},
        {"url": RECEIVER, "events": []},
        {"url": RECEIVER + "/" + "x" * 2000},
        {"url": RECEIVER, "secret": "mine"},
    ],
)
async def test_malformed_registrations_get_422(alpha: httpx.AsyncClient, body: dict):
    assert (await alpha.post("/webhooks", json=body)).status_code == 422


async def test_private_addresses_are_let_through_when_allowed(uow_factory: UnitOfWorkFactory):
    async with client_of(uow_factory, allow_private=True) as api:
        response = await api.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})

    assert response.status_code == 201


async def test_endpoints_are_the_shops_own(api: httpx.AsyncClient, alpha: httpx.AsyncClient):
    mine = await register(alpha)

    for method, path in [
        ("DELETE", f"/webhooks/{mine['id']}"),
        ("GET", f"/webhooks/{mine['id']}/deliveries"),
    ]:
        response = await api.request(method, path)
        assert response.status_code == 404
        assert response.json() == {"detail": "no such webhook endpoint"}
    assert (await api.get("/webhooks")).json() == []
    assert (await alpha.delete(f"/webhooks/{mine['id']}")).status_code == 204
    assert (await alpha.get("/webhooks")).json() == []
    assert (await alpha.delete(f"/webhooks/{mine['id']}")).status_code == 404


async def test_a_shop_has_at_most_ten_endpoints(alpha: httpx.AsyncClient):
    for _ in range(webhooks.ENDPOINTS_MAX):
        await register(alpha)

    response = await alpha.post("/webhooks", json={"url": RECEIVER})

    assert response.status_code == 409
    assert "at most 10" in response.json()["detail"]


async def test_each_change_of_the_shops_orders_is_logged_for_its_endpoints(
    api: httpx.AsyncClient, alpha: httpx.AsyncClient
):
    every = await register(alpha)
    completions = await register(alpha, events=["order.completed"])
    await register(api)  # another shop's: hears nothing of Alpha's orders
    await district(api, "North")
    await courier(api, "Ann", "North")
    sid = (await alpha.post("/order", json={"name": "soup", "district": "North"})).json()[
        "order_sid"
    ]
    await alpha.post(f"/order/{sid}")

    log = (await alpha.get(f"/webhooks/{every['id']}/deliveries")).json()
    only = (await alpha.get(f"/webhooks/{completions['id']}/deliveries")).json()

    assert [(c["event"], c["order_sid"], c["state"]) for c in log] == [
        ("order.completed", sid, "pending"),
        ("order.assigned", sid, "pending"),
    ]
    assert [c["event"] for c in only] == ["order.completed"]
    assert log[0]["id"].startswith("msg_")
    assert log[0]["id"] != only[0]["id"]
    assert (await api.get("/webhooks")).json()[0]["failing_since"] is None


async def test_an_endpoint_failing_for_three_days_is_disabled_and_its_shop_told(
    uow_factory: UnitOfWorkFactory,
    api: httpx.AsyncClient,
    alpha: httpx.AsyncClient,
    fake_clock: FakeClock,
):
    endpoint = await register(alpha)
    await district(api, "North")
    await courier(api, "Ann", "North")
    policy = RetryPolicy()

    async def fail_once() -> None:
        sid = (await alpha.post("/order", json={"name": "x", "district": "North"})).json()
        await alpha.post(f"/order/{sid['order_sid']}")
        fake_clock.advance(hours=2)
        for job in await webhooks.claim(
            uow_factory(), "me", endpoints=5, lease=timedelta(seconds=60), busy=()
        ):
            failed = [Outcome(job, 503, "answered 503")]
            await webhooks.record(uow_factory(), "me", failed, policy)

    await fail_once()
    for _ in range(3 * 12):  # every 2 hours for 3 days
        await fail_once()
    async with client_of(uow_factory, alpha.headers["authorization"].split()[1]) as again:
        told = await again.get("/webhooks")  # a new app: the gate looks at once
        later = await again.get("/webhooks")

    assert "disabled" in told.headers["webhook-endpoint-disabled"]
    assert "webhook-endpoint-disabled" not in later.headers
    (shown,) = later.json()
    assert shown["id"] == endpoint["id"]
    assert shown["disabled_at"] is not None
    calls = (await alpha.get(f"/webhooks/{endpoint['id']}/deliveries")).json()
    assert {c["state"] for c in calls} == {"failed"}  # given up after 24 h, or on disabling
    assert {c["last_status"] for c in calls} <= {503, None}
    assert UUID(endpoint["id"])


async def test_a_failure_after_a_quiet_spell_starts_a_new_count(
    uow_factory: UnitOfWorkFactory,
    api: httpx.AsyncClient,
    alpha: httpx.AsyncClient,
    fake_clock: FakeClock,
):
    """One event failing for a day, then nothing for four days: the next failure is the
    first of a new run, not the fourth day of the old one."""
    endpoint = await register(alpha)
    await district(api, "North")
    await courier(api, "Ann", "North")
    policy = RetryPolicy()

    async def post_and_fail(hours_later: float) -> None:
        fake_clock.advance(hours=hours_later)
        for job in await webhooks.claim(
            uow_factory(), "me", endpoints=5, lease=timedelta(seconds=60), busy=()
        ):
            await webhooks.record(uow_factory(), "me", [Outcome(job, 503, "no")], policy)

    posted = await alpha.post("/order", json={"name": "x", "district": "North"})
    await post_and_fail(0)
    await post_and_fail(25)  # given up
    fake_clock.advance(days=4)
    await alpha.post(f"/order/{posted.json()['order_sid']}")  # completed: another event
    await post_and_fail(0)

    (shown,) = (await alpha.get("/webhooks")).json()
    calls = (await alpha.get(f"/webhooks/{endpoint['id']}/deliveries")).json()
    assert shown["disabled_at"] is None
    assert [c["state"] for c in calls] == ["pending", "failed"]


async def test_registrations_at_once_stop_at_ten(alpha: httpx.AsyncClient):
    answers = await asyncio.gather(
        *(alpha.post("/webhooks", json={"url": RECEIVER}) for _ in range(15))
    )

    assert sorted(a.status_code for a in answers) == [201] * 10 + [409] * 5
    assert len((await alpha.get("/webhooks")).json()) == 10


async def test_tokens_made_at_once_for_a_new_shop_all_work(uow_factory: UnitOfWorkFactory):
    made = await asyncio.gather(*(shops.add_token(uow_factory(), "Gamma") for _ in range(8)))

    holders = {await shops.by_token(uow_factory(), token) for _, token in made}
    assert len(holders) == 1
    assert len((await shops.list_shops(uow_factory()))[0].tokens) == 8
