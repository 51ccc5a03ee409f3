"""No transaction is open while the bot waits on Telegram, and what was saved stays saved."""

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import SendMessage

from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, buttons, texts
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER

COURIER = 7
OTHER_DISPATCHER_CHAT = -100777
SLOW_CHAT = -100999
# Telegram holds every call to the slow chat until the test lets go; the others must not wait.
PATIENCE = 5.0


async def a_courier_with_an_order(harness: Harness) -> str:
    """Courier 7 serves North and carries order #1; returns their Complete button's data."""
    await add_districts(harness, "North", "South")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(DISPATCHER, "/order North soup", chat_id=DISPATCH_CHAT)
    sent = [r for r in await harness.deliver() if isinstance(r, SendMessage)]
    order = next(r for r in sent if r.chat_id == COURIER)
    return buttons(order)[0][1]


async def test_a_slow_chat_does_not_hold_up_the_others(harness: Harness):
    complete = await a_courier_with_an_order(harness)
    gate = harness.session.held[SLOW_CHAT] = asyncio.Event()

    # In the slow chat one dispatcher posts an order: that never waits for the chat, its
    # answer comes from the outbox. Another reads the list: that reply hangs.
    await asyncio.wait_for(harness.send(ADMIN, "/order South tea", chat_id=SLOW_CHAT), PATIENCE)
    slow = [asyncio.create_task(harness.send(DISPATCHER, "/orders", chat_id=SLOW_CHAT))]
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    done = await asyncio.wait_for(harness.tap(COURIER, complete), PATIENCE)
    completed_in = time.perf_counter() - started
    posted = await asyncio.wait_for(
        harness.send(DISPATCHER, "/order North bread", chat_id=OTHER_DISPATCHER_CHAT), PATIENCE
    )
    answered_in = time.perf_counter() - started
    print(
        f"\nwhile one chat hangs: Complete answered in {completed_in * 1000:.0f} ms,"
        f" /order in {answered_in * 1000:.0f} ms"
    )

    assert "delivered in" in texts(done, COURIER)[0]
    assert posted == []  # its answer is in the outbox
    assert not any(task.done() for task in slow)
    gate.set()
    await asyncio.gather(*slow)
    assert "went to Ann" in texts(await harness.deliver(), OTHER_DISPATCHER_CHAT)[0]
    replies = "\n".join(texts(harness.session.requests, SLOW_CHAT))
    assert "Order <b>#2</b> (South) is queued" in replies
    assert "<b>Orders</b>" in replies


@pytest.fixture
def write_lock(harness: Harness) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction, holding SQLite's write lock."""
    database = Path(harness.uow_factory.engine.url.database or "")
    other = sqlite3.connect(database, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    yield other
    other.rollback()
    other.close()


async def test_reading_never_waits_for_the_write_lock(
    harness: Harness, write_lock: sqlite3.Connection
):
    write_lock.rollback()  # set the scene without the lock, then take it
    await a_courier_with_an_order(harness)
    write_lock.execute("BEGIN IMMEDIATE")

    for user, command in [
        (DISPATCHER, "/orders"),
        (DISPATCHER, "/track 1"),
        (DISPATCHER, "/stats"),
        (DISPATCHER, "/couriers"),
        (DISPATCHER, "/courier 1"),
        (DISPATCHER, "/districts"),
        (COURIER, "/me"),
        (COURIER, "/help"),
    ]:
        reply = await asyncio.wait_for(harness.send(user, command), PATIENCE)
        assert texts(reply), command


@pytest.mark.parametrize(
    "failure",
    [
        TelegramRetryAfter(SendMessage(chat_id=0, text=""), "Too Many Requests", retry_after=30),
        TelegramServerError(SendMessage(chat_id=0, text=""), "Bad Gateway"),
    ],
)
async def test_a_reply_lost_after_the_commit_keeps_the_order(
    harness: Harness, caplog: pytest.LogCaptureFixture, failure: Exception
):
    harness.session.failing[DISPATCH_CHAT] = failure

    with caplog.at_level(logging.WARNING):
        sent = await harness.send(DISPATCHER, "/add_district North", chat_id=DISPATCH_CHAT)

    assert not [t for t in texts(sent) if "went wrong" in t]
    assert "the answer could not be sent" in caplog.text
    del harness.session.failing[DISPATCH_CHAT]
    (listing,) = texts(await harness.send(DISPATCHER, "/districts"))
    assert "North" in listing


async def test_a_writer_waits_out_another_processs_lock_without_stalling_the_bot(
    harness: Harness, write_lock: sqlite3.Connection
):
    """SQLite's busy handler would sleep in the event loop; the unit of work waits with
    asyncio instead, so everything else goes on meanwhile."""
    gaps: list[float] = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            gaps.append(time.perf_counter() - before)

    ticking = asyncio.create_task(tick())
    writing = asyncio.create_task(harness.send(DISPATCHER, "/add_district South"))
    await asyncio.sleep(1.0)
    assert not writing.done()  # still waiting for the lock
    write_lock.rollback()
    added = await asyncio.wait_for(writing, PATIENCE)
    ticking.cancel()

    assert "District South added." in texts(added)
    assert max(gaps) < 0.2, max(gaps)  # the loop never stalled
