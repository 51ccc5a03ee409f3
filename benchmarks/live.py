"""`python -m bot` against the project's fake Bot API server on loopback (tests/e2e).

- latency: dispatchers post orders at a steady rate; the time from handing the `/order` update
  to the server until the courier's `sendMessage` arrives there. No flood limits.
- offers: the same with OFFER_SECONDS=60, the courier's message being the offer.
- burst: orders for as many couriers at once, the server enforcing 30 messages a second;
  messages a second against that cap, and the 429s the bot received.
- memory: the bot's peak resident memory with many couriers registered and a burst in flight.
- locations: a shop posts orders with a pickup point over HTTP at 10 a second, each offered to
  the nearest of 1,000 couriers, while all of them stream a live location every 3 s (333
  edits a second), and then without the stream: from the POST to the offer's arrival.

Run with `.venv/bin/python -m benchmarks.live latency|offers|burst|memory|locations [size]`.
"""

import asyncio
import contextlib
import itertools
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from benchmarks.common import ADMIN, FIRST_COURIER, insert_in_batches, summary_ms
from db.engine import create_engine
from db.migrate import upgrade
from db.models import Courier, CourierPosition, Point, StaffMember, courier_districts
from db.uow import UnitOfWorkFactory
from playground.faults import FloodRules
from playground.telegram import SENDING, Call, FakeTelegram, serving
from services import districts, geo, staff
from tests.e2e.conftest import (
    TOKEN,
    BotProcess,
    bot_environment,
    free_port,
    post_orders,
    start_bot,
    stop_bot,
)

FIRST_DISPATCHER = 2_000_000
OFFER = re.compile(r"New order <b>#(\d+)</b>")
PARCEL = re.compile(r"New order <b>#\d+</b> · North\nparcel (\d+)")
API_TOKEN = "benchmark-shop-token-0123456789"
CAP = 30  # messages a second that the fake server allows


async def seed(database: Path, couriers: int, dispatchers: int, located: bool = False) -> None:
    """One district, North; that many free couriers in it, and dispatchers, in bulk; with
    `located`, each courier at a spot of the city (`spot`), fresh for an hour."""
    url = f"sqlite+aiosqlite:///{database}"
    await upgrade(url)
    engine = create_engine(url)
    factory = UnitOfWorkFactory(engine)
    try:
        await staff.sync_admins(factory(), [ADMIN])
        north = await districts.add_district(factory(), ADMIN, "North")
        now = datetime.now(UTC)
        uow = factory()
        async with uow.write():
            run = uow.session.execute
            people = [
                {"telegram_id": FIRST_DISPATCHER + d, "role": "dispatcher", "created_at": now}
                for d in range(dispatchers)
            ]
            rows = [
                {
                    "id": 1 + c,
                    "telegram_id": FIRST_COURIER + c,
                    "name": f"C{c}",
                    "status": "active",
                    "online": True,
                    "free_since": now,
                    "created_at": now,
                }
                for c in range(couriers)
            ]
            links = [
                {"courier_id": 1 + c, "district_id": north.id, "free_since": now}
                for c in range(couriers)
            ]
            positions = [
                {
                    "courier_id": 1 + c,
                    "lat": spot(c).lat,
                    "lon": spot(c).lon,
                    "cell": geo.cell_of(spot(c).lat, spot(c).lon),
                    "at": now,
                    "fresh_until": now + timedelta(hours=1),
                }
                for c in range(couriers if located else 0)
            ]
            for link, position in zip(links, positions, strict=False):
                link["cell"] = position["cell"]
            for table, values in (
                (StaffMember, people),
                (Courier, rows),
                (courier_districts, links),
                (CourierPosition, positions),
            ):
                await insert_in_batches(run, table, values)
            await uow.commit()
    finally:
        await engine.dispose()


def spot(n: int) -> Point:
    """The n-th place of a city about 20 km across: the same for the same n."""
    rng = random.Random(n)
    return Point(52.52 + rng.uniform(-0.09, 0.09), 13.405 + rng.uniform(-0.15, 0.15))


@asynccontextmanager
async def running_bot(
    couriers: int,
    dispatchers: int,
    settings: dict[str, str] | None = None,
    *,
    located: bool = False,
) -> AsyncIterator[tuple[FakeTelegram, BotProcess]]:
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "live.sqlite3"
        await seed(database, couriers, dispatchers, located)
        async with serving(FakeTelegram(TOKEN)) as (fake, url):
            bot = await start_bot(bot_environment(url, database, **(settings or {})), Path(folder))
            try:
                await fake.wait_for(lambda c: c.method == "setMyCommands", within=60)
                yield fake, bot
            finally:
                log = await stop_bot(bot)
                if bot.returncode != 0:
                    print(log[-3000:])


def offer(call: Call) -> int | None:
    found = OFFER.search(call.text) if call.method == "sendMessage" else None
    return int(found.group(1)) if found else None


async def latency(orders: int, rate: float = 10.0, **settings: str) -> list[float]:
    """Seconds from each `/order` update handed over to its offer's arrival."""
    async with running_bot(orders, orders, settings) as (fake, _):
        handed: dict[int, float] = {}
        for n in range(1, orders + 1):
            handed[n] = time.monotonic()
            await fake.send(FIRST_DISPATCHER + n - 1, f"/order North parcel {n}")
            await asyncio.sleep(max(0.0, handed[n] + 1 / rate - time.monotonic()))
        await fake.wait_until(lambda: _offers(fake) == orders, within=60)
        offered = [(c.at, offer(c)) for c in fake.calls]
        return [at - handed[n] for at, n in offered if n is not None]


async def located(orders: int, stream: bool, couriers: int = 1000) -> tuple[list[float], float]:
    """Seconds from each POST /order with a pickup point to its offer's arrival, at 10 a
    second; with `stream`, every courier's live location moving every 3 s meanwhile. And
    the live edits the bot took a second while the orders came."""
    port = free_port()
    settings = {"API_TOKENS": API_TOKEN, "WEB_PORT": str(port), "OFFER_SECONDS": "60"}
    async with (
        running_bot(couriers, 0, settings, located=True) as (fake, _),
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as http,
    ):
        await _served(http, port)
        moving = asyncio.create_task(_stream(fake, couriers)) if stream else None
        await asyncio.sleep(3 if stream else 0)  # the stream at its full rate
        handed: dict[int, float] = {}
        posts = []
        began, taken = time.monotonic(), fake.taken
        for n in range(1, orders + 1):
            handed[n] = time.monotonic()
            body = {"name": f"parcel {n}", "district": "North", "pickup": asdict(spot(-n))}
            posts.append(
                asyncio.create_task(http.post(f"http://127.0.0.1:{port}/order", json=body))
            )
            await asyncio.sleep(max(0.0, handed[n] + 0.1 - time.monotonic()))
        await asyncio.gather(*posts)
        await fake.wait_until(lambda: _parcels(fake) == orders, within=120)
        edits_a_second = (fake.taken - taken) / (time.monotonic() - began)
        if moving is not None:
            moving.cancel()
        arrived = [(c.at, _parcel(c)) for c in fake.calls]
        return [at - handed[n] for at, n in arrived if n is not None], edits_a_second


async def _stream(fake: FakeTelegram, couriers: int) -> None:
    """Each courier's live location moves a little every 3 s, the edits spread evenly."""
    messages = {c: fake.shared_before(FIRST_COURIER + c, 8 * 3600) for c in range(couriers)}
    for step in itertools.count(1):
        started = time.monotonic()
        for c, message_id in messages.items():
            here = spot(c)
            await fake.move(FIRST_COURIER + c, message_id, here.lat + step / 1e5, here.lon)
            await asyncio.sleep(max(0.0, started + 3 * (c + 1) / couriers - time.monotonic()))


async def _served(http: aiohttp.ClientSession, port: int) -> None:
    for _ in range(600):
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                if answer.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise TimeoutError("the bot's web server did not answer")


def _parcel(call: Call) -> int | None:
    found = PARCEL.search(call.text) if call.method == "sendMessage" else None
    return int(found.group(1)) if found else None


def _parcels(fake: FakeTelegram) -> int:
    return sum(_parcel(c) is not None for c in fake.calls)


async def burst(orders: int) -> tuple[float, int, int]:
    """(messages a second, messages, 429s) for `orders` posted at once under 30 msg/s."""
    async with running_bot(orders, orders) as (fake, _):
        fake.floods = FloodRules(CAP)
        await post_orders(fake, range(FIRST_DISPATCHER, FIRST_DISPATCHER + orders), orders)
        await fake.wait_until(
            lambda: _offers(fake) == orders and _replies(fake) == orders, within=600
        )
        sent = [c.at for c in fake.calls if c.method in SENDING]
        # Sustained: the first second's allowance goes at once, the rest at the rate.
        rate = (len(sent) - CAP) / (max(sent) - min(sent))
        return rate, len(sent), fake.flood_refusals


async def memory(couriers: int, orders: int) -> float:
    """The bot's peak resident memory in MB, `orders` posted at once to `couriers`."""
    async with running_bot(couriers, orders, {"SEND_RATE_LIMIT": "1000"}) as (fake, bot):
        await post_orders(fake, range(FIRST_DISPATCHER, FIRST_DISPATCHER + orders), orders)
        await fake.wait_until(lambda: _offers(fake) == orders, within=600)
        return _peak_rss_mb(bot.process.pid)


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return int(peak.split()[1]) / 1024


def _offers(fake: FakeTelegram) -> int:
    return sum(offer(c) is not None for c in fake.calls)


def _replies(fake: FakeTelegram) -> int:
    return sum(
        c.method == "sendMessage" and c.chat_id >= FIRST_DISPATCHER and "#" in c.text
        for c in fake.calls
    )


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "latency"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if what == "latency":
        samples = asyncio.run(latency(size or 300))
        print(
            f"latency, /order to the courier's sendMessage, {len(samples)} orders at 10/s:"
            f" {summary_ms(samples)}"
        )
    elif what == "offers":
        samples = asyncio.run(latency(size or 300, OFFER_SECONDS="60"))
        print(
            f"offers, /order to the courier's offer with Accept and Decline, {len(samples)} orders"
            f" at 10/s: {summary_ms(samples)}"
        )
    elif what == "burst":
        rate, sent, refused = asyncio.run(burst(size or 300))
        print(
            f"burst, {size or 300} orders at once, server cap {CAP} msg/s: {sent} messages,"
            f" sustained {rate:.1f} msg/s ({rate / CAP:.0%} of the cap), {refused} x 429"
        )
    elif what == "locations":
        orders = size or 300
        quiet, _ = asyncio.run(located(orders, stream=False))
        busy, rate = asyncio.run(located(orders, stream=True))
        print(
            f"locations, POST /order with a pickup to the nearest courier's offer, {orders}"
            f" orders at 10/s, 1,000 couriers located: no live edits {summary_ms(quiet)};"
            f" while all 1,000 stream a live location every 3 s ({rate:.0f} edits/s taken)"
            f" {summary_ms(busy)}"
        )
    else:
        orders = min(size or 10_000, 1_000)
        peak = asyncio.run(memory(size or 10_000, orders))
        print(f"memory, {size or 10_000} couriers, {orders} orders at once: peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
