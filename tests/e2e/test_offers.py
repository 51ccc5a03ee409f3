"""Offers through `python -m bot` and the fake Bot API: couriers accept, decline or ignore them,
the bot is killed midway, and two instances take the same tap at once."""

import asyncio
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from db.engine import create_engine
from db.models import Offer, Order
from db.uow import UnitOfWorkFactory
from playground.chats import Person
from playground.telegram import Call, FakeTelegram
from tests.e2e.conftest import (
    bot_environment,
    count_orders,
    count_rows,
    eventually,
    free_port,
    orders_posted,
    seed,
    sent_to,
    start_bot,
    start_ready,
    stop_bot,
)
from tests.e2e.test_instances import HOOK, SECRET, healthy, webhook_environment
from tests.integration.workload import audit

DISPATCHER = 2001
COURIERS = list(range(10_001, 10_011))
ORDERS = 20
# A courier's chat takes about a message a second, and each offer is two (the offer, and its
# edit when answered or run out): offers of 2 s would keep every chat a message behind.
OFFER_SECONDS = "3"
ORDER = re.compile(r"New order <b>#(\d+)</b>")


class Couriers:
    """Each courier answers each offer at random: accepts within 0 to 4 s (some too late),
    declines, or lets it run out; what they accept they deliver at once. Taken off shift for
    missing offers, they come back at once, the first time."""

    def __init__(self, fake: FakeTelegram, seed: int) -> None:
        self.fake = fake
        self.rng = random.Random(seed)
        self.offers: list[tuple[int, int, int]] = []  # (courier, order, message id)
        self.came_back: set[int] = set()
        self._seen = 0
        self._answers: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            await self.fake.wait_until(lambda: len(self.fake.calls) > self._seen, within=3600)
            fresh, self._seen = self.fake.calls[self._seen :], len(self.fake.calls)
            for call in fresh:
                self._look_at(call)

    def _look_at(self, call: Call) -> None:
        if call.chat_id not in COURIERS or call.method not in ("sendMessage", "editMessageText"):
            return
        labels = dict(call.buttons())
        if "✅ Accept" in labels:
            found = ORDER.search(call.text)
            assert found is not None, call.text
            order = int(found.group(1))
            self.offers.append((call.chat_id, order, call.result["message_id"]))
            self._answer(self._choose(call, labels))
        elif "✅ Complete" in labels:
            self._answer(self.fake.tap(call.chat_id, call.result, labels["✅ Complete"]))
        elif "so your shift is over" in call.text and call.chat_id not in self.came_back:
            self.came_back.add(call.chat_id)  # offers missed: they come back, once
            self._answer(self.fake.send(call.chat_id, "/online"))

    async def _choose(self, call: Call, labels: dict[str, str]) -> None:
        roll = self.rng.random()
        if roll < 0.6:
            delay = self.rng.uniform(0, 4)
            await asyncio.sleep(delay)
            await self.fake.tap(call.chat_id, call.result, labels["✅ Accept"])
        elif roll < 0.8:
            await asyncio.sleep(self.rng.uniform(0, 1))
            await self.fake.tap(call.chat_id, call.result, labels["✖️ Decline"])

    def _answer(self, answering: Any) -> None:
        task = asyncio.ensure_future(answering)
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)


async def test_offers_answered_at_random_through_a_kill_and_a_restart(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    fake, url = telegram
    for courier in COURIERS:
        fake.chats.add(Person(courier, f"C{courier}", "courier"))
    database = tmp_path / "offers.sqlite3"
    await seed(
        database,
        districts=["North"],
        couriers=dict.fromkeys(COURIERS, "North"),
        dispatchers=[DISPATCHER],
    )
    env = bot_environment(url, database, OFFER_SECONDS=OFFER_SECONDS)
    bot = await start_ready(fake, env, tmp_path)
    started = time.monotonic()
    couriers = Couriers(fake, seed=17)
    answering = asyncio.create_task(couriers.run())
    try:
        for n in range(ORDERS):
            await fake.send(DISPATCHER, f"/order North parcel {n + 1}")
            if n == ORDERS // 2:
                await eventually(lambda: _offers_open(database), within=30)
                bot.process.send_signal(signal.SIGKILL)
                await bot.process.wait()
                killed_at = fake.mark()
                bot = await start_ready(fake, env, tmp_path)
        await eventually(lambda: orders_posted(database, ORDERS), within=60)
        await eventually(lambda: _settled(database), within=180)
        print(f"settled {time.monotonic() - started:.1f} s after the first post")
    finally:
        answering.cancel()
    (stopped,) = await asyncio.gather(answering, return_exceptions=True)
    assert isinstance(stopped, asyncio.CancelledError), stopped  # not by a failure of its own
    # Nobody answers any more: what a last /online brought runs out, and then all is still.
    await eventually(lambda: _settled(database), within=30)
    log = await stop_bot(bot)
    answers = Counter(
        str(c.params.get("text")) for c in fake.calls if c.method == "answerCallbackQuery"
    )
    print(f"answers to taps: {answers.most_common(5)}")
    assert bot.returncode == 0, log
    assert "Traceback" not in log, log

    statuses = await _statuses(database)
    assert set(statuses) <= {"assigned", "completed", "queued"}, statuses
    assert statuses.get("completed", 0) >= ORDERS // 3, statuses
    # Nobody was offered an order they had declined: the audit below reads it from the
    # history (a message sent again after the kill is not a new offer).
    # Every offer's message ends as it should: no Accept or Decline left on any, but on a
    # copy sent again because the bot was killed before it recorded the first.
    last_message = {(c, o): m for c, o, m in couriers.offers}
    for (courier, order), message_id in last_message.items():
        shown = fake.chats.find(courier, message_id)
        assert shown is not None
        labels = [b["text"] for row in shown.buttons for b in row]
        assert "✅ Accept" not in labels, (courier, order, shown.text)
    copies = len(couriers.offers) - len(last_message)
    assert copies <= 10, copies
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        report = await audit(UnitOfWorkFactory(engine))
    finally:
        await engine.dispose()
    assert report.violations == [], report.violations[:10]
    assert report.refusals["declined"] > 0
    assert report.refusals["expired"] > 0
    assert couriers.came_back
    # The deadlines open at the kill fired after the restart.
    late = [call for call in fake.calls[killed_at:] if "offer expired" in call.text]
    assert late, "no offer ran out after the restart"


async def _offers_open(database: Path) -> bool:
    return await count_rows(database, select(func.count()).where(Offer.outcome.is_(None))) > 0


async def _settled(database: Path) -> bool:
    """No offer open, and nothing left that a free courier could be offered."""
    return await count_orders(database, "offered") == 0 and not await _offers_open(database)


async def _statuses(database: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Order.status, func.count()).group_by(Order.status)
            )
            return {str(status): count for status, count in rows}
    finally:
        await engine.dispose()


async def test_two_instances_take_two_accept_taps_at_once(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, fresh_postgres_url: str, redis_url: str
):
    fake, url = telegram
    ports = [free_port(), free_port()]
    shared = {"DATABASE_URL": fresh_postgres_url, "REDIS_URL": redis_url, "OFFER_SECONDS": "60"}
    await seed(
        fresh_postgres_url,
        districts=["North"],
        couriers={COURIERS[0]: "North"},
        dispatchers=[DISPATCHER],
    )
    bots = [
        await start_bot(webhook_environment(url, tmp_path, port, ports[0], **shared), tmp_path)
        for port in ports
    ]
    for port in ports:
        await eventually(lambda port=port: healthy(port), within=60)
    courier = COURIERS[0]
    await fake.send(DISPATCHER, "/order North soup")
    offer = await fake.wait_for(lambda c: c.chat_id == courier and bool(c.buttons()), within=30)
    accept = dict(offer.buttons())["✅ Accept"]

    mark = fake.mark()
    await asyncio.gather(
        *(
            _tap_on(port, offer, accept, update_id)
            for port, update_id in zip(ports, (9001, 9002), strict=True)
        )
    )
    answers = [
        await fake.wait_for(
            lambda c, q=query: (
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == q
            ),
            since=mark,
        )
        for query in ("tap-9001", "tap-9002")
    ]
    edited = await fake.wait_for(sent_to(courier, "New order"), since=mark)
    for bot in bots:
        log = await stop_bot(bot)
        assert bot.returncode == 0, log
        assert "Traceback" not in log, log

    texts = sorted(str(answer.params.get("text")) for answer in answers)
    assert texts == ["Order #1 is yours. Thank you!", "You already accepted order #1."]
    assert [label for label, _ in edited.buttons()] == ["✅ Complete"]
    accepted = select(func.count()).where(Offer.outcome == "accepted")
    assert await count_rows(fresh_postgres_url, accepted) == 1


async def _tap_on(port: int, offer: Call, data: str, update_id: int) -> None:
    """The courier's tap, posted straight to one instance, as two load balancers might."""
    update = {
        "update_id": update_id,
        "callback_query": {
            "id": f"tap-{update_id}",
            "from": {"id": offer.chat_id, "is_bot": False, "first_name": "C"},
            "chat_instance": "fake",
            "message": offer.result,
            "data": data,
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}{HOOK}", json=update, headers=headers) as answer,
    ):
        assert answer.status == 200
