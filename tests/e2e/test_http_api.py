"""`python -m bot` with the HTTP API on: a shop posts an order, the courier gets it in
Telegram and completes it, and the shop reads the outcome and hears it on its webhook."""

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from playground.telegram import FakeTelegram
from tests.e2e.conftest import (
    bot_environment,
    eventually,
    free_port,
    output_of,
    seed,
    start_bot,
    start_ready,
    stop_bot,
)

COURIER = 10_001
API_TOKEN = "e2e-shop-token-0123456789"


async def _listening(shop: httpx.AsyncClient) -> bool:
    try:
        return (await shop.get("/docs")).status_code == 200
    except httpx.ConnectError:
        return False


class Receiver:
    """The shop's webhook endpoint: each event it gets, its signature checked."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secret = ""
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.runner = web.AppRunner(web.Application())
        self.runner.app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        Webhook(self.secret).verify(body, dict(request.headers))
        await self.events.put(json.loads(body))
        return web.Response(status=204)

    async def __aenter__(self) -> "Receiver":
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.runner.cleanup()


async def test_a_shop_order_reaches_the_courier_in_telegram(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    fake, url = telegram
    database = tmp_path / "api.sqlite3"
    await seed(database, districts=["North"], couriers={COURIER: "North"})
    port = free_port()
    env = bot_environment(url, database) | {
        "API_TOKENS": API_TOKEN,
        "WEB_PORT": str(port),
        "SHOP_WEBHOOKS_ALLOW_PRIVATE": "true",
    }
    bot = await start_ready(fake, env, tmp_path)
    shop = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    async with Receiver() as receiver:
        await eventually(lambda: _listening(shop), within=30)
        hook = f"http://127.0.0.1:{receiver.port}/hook"
        receiver.secret = (await shop.post("/webhooks", json={"url": hook})).json()["secret"]
        await _order_lifecycle(fake, shop, receiver)

    log = await stop_bot(bot)
    assert bot.returncode == 0, log
    assert API_TOKEN not in log
    assert receiver.secret not in log
    with pytest.raises(httpx.ConnectError):  # the web server stopped with the bot
        await shop.get("/courier")
    await shop.aclose()


async def _order_lifecycle(fake: FakeTelegram, shop: httpx.AsyncClient, receiver: Receiver):
    """The shop posts, the courier completes in Telegram; the shop reads and hears it."""
    (courier,) = (await shop.get("/courier")).json()
    posted = await shop.post("/order", json={"name": "2 pizzas", "district": "North"})
    assert posted.status_code == 201
    assert posted.json()["courier_sid"] == courier["sid"]
    offer = await fake.wait_for(lambda c: c.chat_id == COURIER and "2 pizzas" in c.text)
    await fake.tap(COURIER, offer, offer.buttons()[0][1])
    await fake.wait_for(lambda c: c.method == "answerCallbackQuery")

    order = (await shop.get(f"/order/{posted.json()['order_sid']}")).json()
    card = (await shop.get(f"/courier/{courier['sid']}")).json()
    assert (order["status"], order["state"]) == ("2", "completed")
    assert card["avg_order_complete_time"].startswith("PT")
    assert card["avg_day_orders"] == 1.0
    heard = [await asyncio.wait_for(receiver.events.get(), 10) for _ in range(2)]
    assert [event["type"] for event in heard] == ["order.assigned", "order.completed"]
    assert heard[-1]["data"] == order


async def test_a_port_in_use_stops_the_bot_with_one_line(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    _, url = telegram
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_environment(url, tmp_path / "port.sqlite3") | {
            "API_TOKENS": API_TOKEN,
            "WEB_PORT": str(port),
        }
        bot = await start_bot(env, tmp_path)
        log = await output_of(bot)
    assert bot.returncode == 2
    assert log.strip().splitlines()[-1] == (
        f"Cannot listen on WEB_HOST 127.0.0.1, WEB_PORT {port}: Address already in use"
    )
    assert "Traceback" not in log
