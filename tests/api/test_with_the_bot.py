"""Shops and the bot share one dispatch: couriers made over HTTP join Telegram through their
link, dispatchers see the shops' orders, and a completion over HTTP clears the button."""

import hashlib

import httpx
import pytest
from aiogram.methods import EditMessageReplyMarkup, SendMessage
from sqlalchemy import select

from db.models import Invite
from tests.api.conftest import client_of
from tests.bot.harness import Harness, buttons, message_of, texts
from tests.helpers import DISPATCH_CHAT, DISPATCHER

ANN = 7


@pytest.fixture
async def shop(harness: Harness) -> httpx.AsyncClient:
    async with client_of(harness.uow_factory) as client:
        await client.post("/courier/create_district", json={"name": "North"})
        yield client


async def test_a_courier_made_over_http_joins_telegram_by_the_link(
    harness: Harness, shop: httpx.AsyncClient
):
    made = (await shop.post("/courier", json={"name": "Ann", "districts": ["North"]})).json()
    first = (await shop.post("/order", json={"name": "soup", "district": "North"})).json()
    assert first["courier_sid"] == made["sid"]  # assigned before Telegram, as in the seed
    token = made["telegram_link"].split("start=")[1]

    (welcome,) = texts(await harness.send(ANN, f"/start {token}"))
    assert welcome.startswith("Welcome, Ann! You are courier #1, serving North.")
    current = next(r for r in await harness.deliver() if isinstance(r, SendMessage))
    assert "New order <b>#1</b>" in current.text  # the order they carry comes to the chat too

    await harness.tap(ANN, buttons(current)[0][1])
    assert (await shop.get(f"/order/{first['order_sid']}")).json()["status"] == "2"
    await harness.send(DISPATCHER, "/order North bread", chat_id=DISPATCH_CHAT)
    (next_order,) = texts(await harness.deliver(), ANN)
    assert "New order <b>#2</b>" in next_order

    (again,) = texts(await harness.send(8, f"/start {token}"))
    assert "used up or expired" in again


async def test_a_reissued_link_works_and_the_old_one_does_not(
    harness: Harness, shop: httpx.AsyncClient
):
    made = (await shop.post("/courier", json={"name": "Ann", "districts": ["North"]})).json()
    old = made["telegram_link"].split("start=")[1]
    answer = await shop.post(f"/courier/{made['sid']}/telegram_link")
    assert answer.status_code == 200, answer.text
    assert answer.json()["sid"] == made["sid"]
    new = answer.json()["telegram_link"].split("start=")[1]
    assert new != old

    (refused,) = texts(await harness.send(ANN, f"/start {old}"))
    assert "used up or expired" in refused
    (welcome,) = texts(await harness.send(ANN, f"/start {new}"))
    assert welcome.startswith("Welcome, Ann!")
    connected = await shop.post(f"/courier/{made['sid']}/telegram_link")
    assert connected.status_code == 409
    assert "connected their Telegram" in connected.json()["detail"]
    nobody = await shop.post("/courier/00000000-0000-4000-8000-000000000000/telegram_link")
    assert nobody.status_code == 404


async def test_links_are_kept_only_as_digests(harness: Harness, shop: httpx.AsyncClient):
    made = (await shop.post("/courier", json={"name": "Ann", "districts": ["North"]})).json()
    token = made["telegram_link"].split("start=")[1]
    uow = harness.uow_factory()
    async with uow.read():
        stored = list(await uow.session.scalars(select(Invite.token_hash)))
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


async def test_someone_already_a_courier_cannot_take_a_link(
    harness: Harness, shop: httpx.AsyncClient
):
    made = (await shop.post("/courier", json={"name": "Ann", "districts": ["North"]})).json()
    other = (await shop.post("/courier", json={"name": "Bo", "districts": ["North"]})).json()
    await harness.send(ANN, f"/start {made['telegram_link'].split('start=')[1]}")

    (refused,) = texts(
        await harness.send(ANN, f"/start {other['telegram_link'].split('start=')[1]}")
    )
    assert refused == "You are already registered. See /me."


async def test_completing_over_http_clears_the_telegram_button(
    harness: Harness, shop: httpx.AsyncClient
):
    made = (await shop.post("/courier", json={"name": "Ann", "districts": ["North"]})).json()
    await harness.send(ANN, f"/start {made['telegram_link'].split('start=')[1]}")
    posted = (await shop.post("/order", json={"name": "soup", "district": "North"})).json()
    offer = next(r for r in await harness.deliver() if isinstance(r, SendMessage))

    await shop.post(f"/order/{posted['order_sid']}")
    delivered = await harness.deliver()

    cleared = [r for r in delivered if isinstance(r, EditMessageReplyMarkup)]
    assert [(int(r.chat_id or 0), r.message_id) for r in cleared] == [
        message_of(harness.session, offer)
    ]
    assert texts(delivered, ANN) == ["Order #1 was marked delivered."]


async def test_dispatchers_see_the_shops_orders(harness: Harness, shop: httpx.AsyncClient):
    await shop.post("/order", json={"name": "soup", "district": "North", "queue": True})

    (listing,) = texts(await harness.send(DISPATCHER, "/orders"))
    (card,) = texts(await harness.send(DISPATCHER, "/track 1"))

    assert "#1</b> · North · queued, place 1 · via the API" in listing
    assert "<b>Order #1</b> · North · via the API" in card
