"""Where couriers are, through `python -m bot` and the fake Bot API, by either door: couriers
share live locations, one moves closer, and a dispatcher's order with a venue goes to them."""

import math
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.engine import create_engine
from db.models import CourierPosition, InboxUpdate
from playground.telegram import Call, FakeTelegram
from tests.e2e.conftest import (
    bot_environment,
    count_rows,
    database_url,
    eventually,
    free_port,
    seed,
    sent_to,
    start_bot,
    stop_bot,
)
from tests.e2e.test_instances import HOOK, SECRET

DISPATCHER = 2001
ANN, BOB, CID = 10_001, 10_002, 10_003
SHOP = (52.5200, 13.4050)  # the pickup: a florist's in Berlin


def east(metres: float) -> tuple[float, float]:
    return SHOP[0], SHOP[1] + metres / (111_320 * math.cos(math.radians(SHOP[0])))


def environment(url: str, database: Path, door: str) -> dict[str, str]:
    if door == "polling":
        return bot_environment(url, database)
    port = free_port()
    return bot_environment(
        url,
        database,
        WEBHOOK_URL=f"http://127.0.0.1:{port}{HOOK}",
        WEBHOOK_SECRET=SECRET,
        WEB_PORT=str(port),
    )


async def position_of(database: Path, courier_id: int) -> tuple[float, float] | None:
    query = select(CourierPosition.lat, CourierPosition.lon).where(
        CourierPosition.courier_id == courier_id
    )
    engine = create_engine(database_url(database))
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(query)).one_or_none()
    finally:
        await engine.dispose()
    return None if row is None else (row.lat, row.lon)


@pytest.mark.parametrize("door", ["polling", "webhook"])
async def test_the_nearest_courier_gets_the_order_with_its_venue(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, door: str
):
    fake, url = telegram
    database = tmp_path / "location.sqlite3"
    await seed(
        database,
        districts=["North"],
        couriers=dict.fromkeys([ANN, BOB, CID], "North"),
        dispatchers=[DISPATCHER],
    )
    mark = fake.mark()
    bot = await start_bot(environment(url, database, door), tmp_path)
    ready = "setWebhook" if door == "webhook" else "setMyCommands"
    await fake.wait_for(lambda c: c.method == ready, since=mark, within=60)

    shared = {}
    for courier, metres in ((ANN, 3000), (BOB, 2000), (CID, 4000)):
        shared[courier] = await fake.send_location(courier, *east(metres), live_period=3600)
        await fake.wait_for(sent_to(courier, "I follow your live location"), since=mark)
    for metres in (2500, 1200, 300):  # Cid rides towards the shop
        await fake.move(CID, shared[CID], *east(metres))
    await eventually(lambda: _at(database, 3, east(300)), within=15)

    await fake.send(DISPATCHER, "/order")
    form = await fake.wait_for(lambda c: _buttons_to(c, DISPATCHER), since=mark)
    await fake.tap(DISPATCHER, form, form.buttons()[0][1])
    await fake.wait_for(sent_to(DISPATCHER, "What should be delivered"), since=mark)
    await fake.send(DISPATCHER, "roses")
    asked = await fake.wait_for(sent_to(DISPATCHER, "Where is it picked up"), since=mark)
    venue = {
        "location": {"latitude": SHOP[0], "longitude": SHOP[1]},
        "title": "Rose & Co",
        "address": "1 Alexanderplatz",
    }
    await fake.send(DISPATCHER, None, extra={"venue": venue, "location": venue["location"]})
    asked = await fake.wait_for(sent_to(DISPATCHER, "Where is it delivered"), since=mark)
    await fake.tap(DISPATCHER, asked, asked.buttons()[0][1])  # Skip

    told = await fake.wait_for(sent_to(DISPATCHER, "went to C10003 (#3), 300 m away"), since=mark)
    assert "Order <b>#1</b>" in told.text
    order = await fake.wait_for(sent_to(CID, "New order <b>#1</b>"), since=mark)
    pin = await fake.wait_for(
        lambda c: c.method == "sendVenue" and c.chat_id == CID, since=mark, within=10
    )
    assert pin.params["title"] == "📦 Pickup · order #1"
    assert pin.params["address"] == "Rose & Co, 1 Alexanderplatz"
    assert fake.calls.index(order) < fake.calls.index(pin)  # the order first, then where

    # The live edits never went through the inbox; the first shares did.
    log = await stop_bot(bot)
    assert bot.returncode == 0, log
    assert "Traceback" not in log, log
    edits = select(func.count()).where(InboxUpdate.payload.contains("edited_message"))
    assert await count_rows(database, edits) == 0


def _buttons_to(call: Call, chat_id: int) -> bool:
    return call.method == "sendMessage" and call.chat_id == chat_id and bool(call.buttons())


async def _at(database: Path, courier_id: int, where: tuple[float, float]) -> bool:
    return await position_of(database, courier_id) == pytest.approx(where)
