"""The sender's own loop: it claims only while rows may be due, and never leaves one behind.

The poll is an hour here, so anything still waiting after a few seconds waited for it.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram.methods import SendMessage
from sqlalchemy import event

from bot.telegram.limits import FloodLimiter
from bot.telegram.sender import OutboxSender, SenderSettings
from handlers.i18n import PoI18n
from services import clock, notices
from tests.bot.flows import add_districts, register
from tests.bot.harness import Harness

SETTLED_WITHIN = 5.0
CHAT = 70  # where notices about the courier go, for this test
COURIER = 1


@pytest.fixture
async def running(harness: Harness) -> AsyncIterator[OutboxSender]:
    """A sender of two lanes and three rows per chat, running, that polls once an hour;
    and one courier to write notices about."""
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    settings = SenderSettings(poll_seconds=3600, lease=timedelta(seconds=60), lanes=2, per_chat=3)
    sender = OutboxSender(
        harness.bot, harness.uow_factory, PoI18n("en"), FloodLimiter(1000), settings
    )
    task = asyncio.create_task(sender.run())
    assert await sender.settle(SETTLED_WITHIN)
    yield sender
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def claims(harness: Harness) -> list[str]:
    """Collects each claim the database runs from now on."""
    seen: list[str] = []

    @event.listens_for(harness.uow_factory.engine.sync_engine, "before_cursor_execute")
    def statement(_c: object, _cur: object, sql: str, *_: object) -> None:
        if " ".join(sql.split()).startswith("SELECT outbox.chat_id FROM outbox JOIN"):
            seen.append(sql)  # the first statement of a claim

    return seen


async def notify(harness: Harness, chat_id: int, count: int) -> None:
    """That many notices to one chat, written in one transaction."""
    uow = harness.uow_factory()
    async with uow.write():
        for _ in range(count):
            notices.write(uow, chat_id, None, notices.CourierUnblocked(courier_id=COURIER))
        await uow.commit()


def sent_to(harness: Harness, chat_id: int) -> int:
    """How many notices reached the chat (several that waited together go as one message)."""
    return sum(
        r.text.count("You're unblocked")
        for r in harness.session.requests
        if isinstance(r, SendMessage) and r.chat_id == chat_id
    )


async def test_one_notice_is_one_claim(harness: Harness, running: OutboxSender):
    seen = claims(harness)

    await notify(harness, CHAT, 1)

    assert await running.settle(SETTLED_WITHIN)
    assert sent_to(harness, CHAT) == 1
    assert len(seen) == 1  # the claim took it all: no second claim to find nothing


async def test_more_rows_and_chats_than_one_claim_holds_all_go_at_once(
    harness: Harness, running: OutboxSender
):
    chats = [CHAT, CHAT + 1, CHAT + 2]
    for chat_id in chats:
        await notify(harness, chat_id, 7)  # 7 rows a chat, 3 a claim, 2 lanes

    assert await running.settle(SETTLED_WITHIN)
    assert [sent_to(harness, chat_id) for chat_id in chats] == [7, 7, 7]


async def test_a_notice_for_a_chat_being_sent_to_goes_when_that_chat_is_done(
    harness: Harness, running: OutboxSender
):
    harness.session.held[CHAT] = slow = asyncio.Event()
    await notify(harness, CHAT, 2)
    async with asyncio.timeout(SETTLED_WITHIN):
        await harness.session.holding.wait()  # the first notice is on its way, and stuck

    await notify(harness, CHAT, 1)  # claimed by nobody: its chat is busy
    slow.set()

    assert await running.settle(SETTLED_WITHIN)
    assert sent_to(harness, CHAT) == 3


async def test_settled_means_nothing_is_left_to_send(harness: Harness, running: OutboxSender):
    """Outcomes written while a claim is on its way must not make the sender look idle."""
    harness.session.held[CHAT] = slow = asyncio.Event()
    await notify(harness, CHAT, 1)
    async with asyncio.timeout(SETTLED_WITHIN):
        await harness.session.holding.wait()

    uow = harness.uow_factory()
    async with uow.write():  # the database is busy a moment, so the next two queue up:
        slow.set()  # the first chat's outcome,
        await asyncio.sleep(0.1)
        notices.write(uow, CHAT + 1, None, notices.CourierUnblocked(courier_id=COURIER))
        await uow.commit()  # and the claim this notice wakes
        await asyncio.sleep(0.1)

    assert await running.settle(SETTLED_WITHIN)
    assert sent_to(harness, CHAT + 1) == 1


async def test_a_sender_that_could_not_renew_its_lease_sends_no_more(harness: Harness):
    """The database is away while a send hangs, so the sender cannot renew its lease on the
    chat's rows. It must not go on sending them when the send returns: once the database is
    back it writes what it sent, claims the rest anew, and each notice goes once."""
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    settings = SenderSettings(poll_seconds=0.05, lease=timedelta(seconds=0.6))
    sender = OutboxSender(
        harness.bot, harness.uow_factory, PoI18n("en"), FloodLimiter(1000), settings
    )
    harness.uow_factory.lock_wait = 0.05
    harness.session.held[CHAT] = slow = asyncio.Event()
    uow = harness.uow_factory()
    async with uow.write():  # five messages with buttons: each goes alone
        for n in range(5):
            notice = notices.RegistrationRequest(
                courier_id=COURIER, name=f"#{n + 1}<", districts=()
            )
            notices.write(uow, CHAT, None, notice)
        await uow.commit()
    sending = asyncio.create_task(sender.run())
    async with asyncio.timeout(SETTLED_WITHIN):
        await harness.session.holding.wait()  # the first row is on its way, and stuck

    database = harness.uow_factory.engine.url.database or ""
    other = sqlite3.connect(database, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # no renewal goes through
    await asyncio.sleep(1.0)  # the lease is out
    slow.set()
    await asyncio.sleep(0.3)
    sent_while_away = len(offers_to(harness, CHAT))
    other.rollback()
    other.close()
    try:
        assert await sender.settle(SETTLED_WITHIN)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)

    assert sent_while_away == 1  # the one under way; nothing on the lost lease
    assert offers_to(harness, CHAT) == [1, 2, 3, 4, 5]


def offers_to(harness: Harness, chat_id: int) -> list[int]:
    return [
        int(r.text.split("#")[2].split("&lt;")[0])
        for r in harness.session.requests
        if isinstance(r, SendMessage) and r.chat_id == chat_id and "asks to join" in r.text
    ]


async def test_a_sender_whose_chat_another_took_sends_no_more(harness: Harness):
    """Its lease ran out and another sender took the chat's rows: its renewal says so, and
    it stops sending them (the other one sends them)."""
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    settings = SenderSettings(poll_seconds=0.05, lease=timedelta(seconds=0.6))
    sender = OutboxSender(
        harness.bot, harness.uow_factory, PoI18n("en"), FloodLimiter(1000), settings
    )
    harness.session.held[CHAT] = slow = asyncio.Event()
    await requests_to_join(harness, 5)
    sending = asyncio.create_task(sender.run())
    async with asyncio.timeout(SETTLED_WITHIN):
        await harness.session.holding.wait()  # the first row is on its way, and stuck
    uow = harness.uow_factory()
    async with uow.write():  # as another sender does once the lease has run out
        await uow.outbox.queue.claim(
            clock.utcnow() + timedelta(hours=1),
            clock.utcnow() + timedelta(hours=2),
            "another",
            chats=10,
            per_chat=10,
        )
        await uow.commit()

    await asyncio.sleep(1.0)  # its renewals find nothing of that chat held
    slow.set()
    await asyncio.sleep(0.5)
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)

    assert offers_to(harness, CHAT) == [1]  # the one under way, nothing more


async def requests_to_join(harness: Harness, count: int) -> None:
    """`count` messages with buttons to CHAT: each goes alone, none merged."""
    uow = harness.uow_factory()
    async with uow.write():
        for n in range(count):
            notice = notices.RegistrationRequest(
                courier_id=COURIER, name=f"#{n + 1}<", districts=()
            )
            notices.write(uow, CHAT, None, notice)
        await uow.commit()
