"""Exactly once at the doors: an update Telegram was told is taken is never lost, and a copy
of one changes nothing, whatever stops the bot and whenever."""

import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from db.engine import create_engine
from db.models import Order
from playground.faults import FloodRules
from playground.telegram import FakeTelegram
from tests.e2e.conftest import (
    BotProcess,
    bot_environment,
    count_orders,
    database_url,
    eventually,
    free_port,
    offer,
    orders_posted,
    seed,
    sent_to,
    start_ready,
    stop_bot,
)
from tests.e2e.test_instances import HOOK, SECRET, healthy

GROUP = -100_500
DISPATCHER = 2_001
STRANGER = 4_444


def environment(mode: str, url: str, database: Path, **extra: str) -> dict[str, str]:
    """The bot on a SQLite file, taking updates by long polling or over the webhook."""
    env = bot_environment(url, database, **extra)
    if mode == "webhook":
        port = free_port()
        env |= {
            "WEBHOOK_URL": f"http://127.0.0.1:{port}{HOOK}",
            "WEBHOOK_SECRET": SECRET,
            "WEB_PORT": str(port),
        }
    return env


async def start(fake: FakeTelegram, env: dict[str, str], cwd: Path) -> BotProcess:
    """The bot, once it takes updates: its menus are set, and its webhook answers, if any."""
    bot = await start_ready(fake, env, cwd)
    if "WEB_PORT" in env:
        await eventually(lambda: healthy(int(env["WEB_PORT"])), within=60)
    return bot


async def couriers_seeded(database: Path | str, count: int) -> list[int]:
    couriers = list(range(10_001, 10_001 + count))
    await seed(
        database,
        districts=["North"],
        couriers=dict.fromkeys(couriers, "North"),
        dispatchers=[DISPATCHER],
    )
    return couriers


async def taken(fake: FakeTelegram, count: int) -> bool:
    return fake.taken >= count


def answered(fake: FakeTelegram, chat_id: int) -> int:
    """How many answers to posting an order reached the chat (several may share a message)."""
    return sum(
        c.text.count("went to")
        for c in fake.calls
        if c.method == "sendMessage" and c.chat_id == chat_id
    )


def offers(fake: FakeTelegram) -> Counter[int]:
    """How many times each order was offered to a courier."""
    return Counter(order for call in fake.calls if (order := offer(call)) is not None)


async def descriptions(database: Path | str) -> list[str]:
    engine = create_engine(database_url(database))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(Order.description).order_by(Order.id))
            return list(rows.scalars())
    finally:
        await engine.dispose()


async def stop(bot: BotProcess, how: signal.Signals) -> None:
    bot.process.send_signal(how)
    await asyncio.wait_for(bot.process.wait(), 60)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_deploy_amid_thirty_group_orders_loses_and_doubles_none(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, mode: str, how: signal.Signals
):
    """The group's 20-a-minute limit paces the answers; Telegram has been told all 30
    updates were taken when the bot is stopped. After the restart there are 30 orders."""
    fake, url = telegram
    database = tmp_path / "doors.sqlite3"
    await couriers_seeded(database, 30)
    await thirty_group_orders_across_a_stop(fake, environment(mode, url, database), how, tmp_path)


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_kill_amid_thirty_group_orders_on_postgresql(
    telegram: tuple[FakeTelegram, str],
    tmp_path: Path,
    fresh_postgres_url: str,
    redis_url: str,
    mode: str,
):
    """The same on PostgreSQL and Redis, where the restarted instance takes the dead one's
    updates over once their lease runs out."""
    fake, url = telegram
    await couriers_seeded(fresh_postgres_url, 30)
    env = environment(mode, url, tmp_path / "unused.sqlite3") | {
        "DATABASE_URL": fresh_postgres_url,
        "REDIS_URL": redis_url,
        "INBOX_LEASE_SECONDS": "2",
        "OUTBOX_LEASE_SECONDS": "2",
    }
    await thirty_group_orders_across_a_stop(fake, env, signal.SIGKILL, tmp_path)


async def thirty_group_orders_across_a_stop(
    fake: FakeTelegram, env: dict[str, str], how: signal.Signals, cwd: Path
) -> None:
    database = env["DATABASE_URL"]
    fake.floods = FloodRules()
    bot = await start(fake, env, cwd)
    for n in range(30):
        await fake.send(DISPATCHER, f"/order North parcel {n + 1}", chat_id=GROUP)
    await eventually(lambda: taken(fake, 30), within=30)

    await stop(bot, how)
    restarted = await start(fake, env, cwd)
    await eventually(lambda: orders_posted(database, 30), within=60)
    await fake.wait_until(lambda: len(offers(fake)) == 30, within=60)
    await asyncio.sleep(1)  # time for a copy to arrive, were there one
    log = await stop_bot(restarted)

    assert await descriptions(database) == [f"parcel {n + 1}" for n in range(30)]
    assert restarted.returncode == 0, log
    if how is signal.SIGTERM:  # a stop lets each send in flight finish: no offer twice
        assert max(offers(fake).values()) == 1


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_every_update_delivered_twice_has_its_effect_once(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, mode: str
):
    """Telegram sends each update again, as when the bot's 200 or confirmation was lost."""
    fake, url = telegram
    fake.redeliver = True
    database = tmp_path / "twice.sqlite3"
    await couriers_seeded(database, 1)
    bot = await start(fake, environment(mode, url, database), tmp_path)

    mark = fake.mark()
    for n in range(5):
        await fake.send(DISPATCHER, f"/order North parcel {n + 1}")
    first = await fake.wait_for(lambda c: offer(c) == 1, since=mark)
    await fake.tap(first.chat_id, first, first.buttons()[0][1])
    await fake.wait_for(lambda c: offer(c) == 2, since=mark)
    await asyncio.sleep(1)  # time for the copies to arrive
    log = await stop_bot(bot)

    assert await count_orders(database) == 5
    assert await count_orders(database, "completed") == 1
    assert offers(fake) == {1: 1, 2: 1}
    assert len([c for c in fake.calls if sent_to(DISPATCHER, "delivered by")(c)]) == 1
    assert bot.returncode == 0, log


async def test_a_hundred_orders_pasted_then_a_kill(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    """One dispatcher pastes 100 orders in a private chat whose answers Telegram holds (as a
    flood limit or a slow chat would): all 100 are posted all the same, and the bot is
    killed with the offers on their way. After the restart all 100 reach couriers."""
    fake, url = telegram
    database = tmp_path / "pasted.sqlite3"
    await couriers_seeded(database, 100)
    fake.floods = FloodRules()
    env = environment("polling", url, database)
    bot = await start(fake, env, tmp_path)

    fake.slow[DISPATCHER] = 60.0  # no answer reaches the dispatcher before the kill
    started = time.monotonic()
    for n in range(100):
        await fake.send(DISPATCHER, f"/order North parcel {n + 1}")
    # Posting never waits for the chat's answers (before, each waited for its own).
    await eventually(lambda: orders_posted(database, 100), within=30)
    posted_in = time.monotonic() - started
    assert answered(fake, DISPATCHER) == 0
    bot.process.kill()
    await bot.process.wait()
    killed_at = time.monotonic()
    fake.slow.clear()
    restarted = await start(fake, env, tmp_path)
    await fake.wait_until(lambda: len(offers(fake)) == 100, within=60)
    await fake.wait_until(lambda: answered(fake, DISPATCHER) >= 100, within=60)
    log = await stop_bot(restarted)

    first_offer = {}
    for call in fake.calls:
        if (order := offer(call)) is not None:
            first_offer.setdefault(order, call.at)
    twice = [order for order, times in offers(fake).items() if times > 1]
    print(
        f"\nall 100 posted {posted_in:.1f} s after the paste; all 100 offered"
        f" {time.monotonic() - started:.1f} s after it, across the kill;"
        f" {len(twice)} offers in flight at the kill sent twice"
    )
    assert sorted(offers(fake)) == list(range(1, 101))
    # Only a send in flight at the kill may go twice: Telegram cannot be asked what arrived.
    assert [o for o in twice if killed_at - first_offer[o] > 1.0] == []
    assert restarted.returncode == 0, log
    answers = [c for c in fake.calls if c.method == "sendMessage" and c.chat_id == DISPATCHER]
    print(f"the dispatcher's 100 answers came in {len(answers)} messages")
    assert len(answers) < 100  # answers that waited together went as one message


# Longer than the webhook waits to store an update (then Telegram is told to send it again).
LOCK_SECONDS = 10
LOCK_HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.rollback()
"""


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_another_process_holding_the_write_lock(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, mode: str
):
    """A backup or a migration by hand holds SQLite's write lock: the bot answers its health
    check within a second all along, loses no update, and catches up afterwards."""
    fake, url = telegram
    database = tmp_path / "locked.sqlite3"
    await couriers_seeded(database, 5)
    env = {"WEB_PORT": str(free_port())} | environment(mode, url, database)
    port = int(env["WEB_PORT"])
    bot = await start(fake, env, tmp_path)
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCK_HOLDER,
        str(database),
        str(LOCK_SECONDS),
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"
    for n in range(5):
        await fake.send(DISPATCHER, f"/order North parcel {n + 1}")

    slowest, statuses = 0.0, Counter[int]()
    while holder.returncode is None:
        started = time.monotonic()
        status = await asyncio.wait_for(health_status(port), 5)
        slowest = max(slowest, time.monotonic() - started)
        statuses[status] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(holder.wait(), 0.5)
    await eventually(lambda: orders_posted(database, 5), within=60)
    await fake.wait_until(lambda: len(offers(fake)) == 5, within=30)
    log = await stop_bot(bot)

    print(
        f"\nwhile locked for {LOCK_SECONDS} s: /healthz {dict(statuses)}, slowest {slowest:.2f} s"
    )
    assert slowest < 1.0
    assert statuses[503] > 0
    assert await descriptions(database) == [f"parcel {n + 1}" for n in range(5)]
    assert bot.returncode == 0, log


async def health_status(port: int) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as answer,
    ):
        return answer.status


async def test_a_stop_while_telegram_is_slow_to_take_an_offer_sends_it_once(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    """SIGTERM while an offer is on its way: the send finishes and is recorded, so the
    restarted bot does not send it again."""
    fake, url = telegram
    database = tmp_path / "slow.sqlite3"
    (courier,) = await couriers_seeded(database, 1)
    env = environment("polling", url, database, SHUTDOWN_GRACE_SECONDS="1")
    bot = await start(fake, env, tmp_path)
    fake.slow[courier] = 3.0

    await fake.send(DISPATCHER, "/order North soup")
    await fake.wait_for(lambda c: offer(c) == 1, arrived=True)  # on its way, unanswered
    log = await stop_bot(bot)
    fake.slow.clear()
    restarted = await start(fake, env, tmp_path)
    await asyncio.sleep(2)  # time for a second copy to go, were there one
    log += await stop_bot(restarted)

    assert offers(fake) == {1: 1}
    assert fake.abandoned == []  # the bot waited for Telegram's answer
    assert bot.returncode == 0, log


def nested(depth: int) -> dict[str, object]:
    """A field Telegram never sends, nested deeper than the bot can write down."""
    inner: dict[str, object] = {}
    for _ in range(depth):
        inner = {"deeper": inner}
    return inner


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_an_update_that_cannot_be_stored_holds_up_nobody(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, mode: str
):
    fake, url = telegram
    database = tmp_path / "poison.sqlite3"
    await couriers_seeded(database, 1)
    bot = await start(fake, environment(mode, url, database), tmp_path)

    await fake.send(STRANGER, "hello", extra={"unknown": nested(900)})
    await fake.send(DISPATCHER, "/order North soup")
    await eventually(lambda: orders_posted(database, 1), within=30)
    log = await stop_bot(bot)

    assert "cannot be stored, and is dropped" in log
    assert bot.returncode == 0, log
