"""Senders side by side on one outbox, claiming, sending and recording as the bot's do, with
notices being written meanwhile: no row is sent twice, and each chat's rows go in order."""

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import groupby

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import OutboxMessage
from db.uow import UnitOfWorkFactory
from services import clock, outbox
from services.outbox import Delivery, Outcome, RetryAt, Sent, Untried

SENDERS = 8
CHATS = 3  # few chats, so that senders keep meeting on the same ones
SENDS = 150  # the senders run until they have sent this many rows between them
WITHIN_SECONDS = 60
# Rows of other chats that a sender elsewhere holds: each claim reads past them, which widens
# the moment between a claim's snapshot and its locks, where the races are.
HELD_ELSEWHERE_CHATS, HELD_ELSEWHERE_ROWS = 500, 20


class Ledger:
    """Every send, as it happens, and what it broke."""

    def __init__(self) -> None:
        self.sends: Counter[int] = Counter()
        self.last_sent: dict[int, int] = defaultdict(int)
        self.problems: list[str] = []
        self.enough = asyncio.Event()

    def send(self, delivery: Delivery) -> None:
        chat, row = delivery.chat_id, delivery.id
        if self.sends[row]:
            self.problems.append(f"row {row} of chat {chat} sent again")
        elif row < self.last_sent[chat]:
            self.problems.append(f"row {row} of chat {chat} sent after row {self.last_sent[chat]}")
        self.sends[row] += 1
        self.last_sent[chat] = max(self.last_sent[chat], row)
        if sum(self.sends.values()) >= SENDS:
            self.enough.set()


async def hold_elsewhere(uow_factory: UnitOfWorkFactory) -> None:
    uow = uow_factory()
    async with uow.write():
        for n in range(HELD_ELSEWHERE_CHATS * HELD_ELSEWHERE_ROWS):
            chat_id = 1000 + n % HELD_ELSEWHERE_CHATS
            uow.outbox.add(chat_id, "courier_unblocked", {"courier_id": 1}, None, clock.utcnow())
        await uow.commit()
    async with uow.write():
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id >= 1000)
            .values(claimed_by="elsewhere", claimed_until=clock.utcnow() + timedelta(days=1))
        )
        await uow.commit()


async def write_notices(uow_factory: UnitOfWorkFactory, stop: asyncio.Event) -> None:
    while not stop.is_set():
        uow = uow_factory()
        async with uow.write():
            for _ in range(random.randint(1, 4)):
                chat_id = random.randint(1, CHATS)
                uow.outbox.add(
                    chat_id, "courier_unblocked", {"courier_id": 1}, None, clock.utcnow()
                )
            await uow.commit()
        await asyncio.sleep(random.uniform(0, 0.01))


async def send_as_a_sender(
    uow_factory: UnitOfWorkFactory, ledger: Ledger, stop: asyncio.Event
) -> None:
    """Claim, send, record. A chat's first outcome is recorded on its own, before the rest
    are sent, as the bot's recorder writes outcomes while a lane goes on."""
    owner = uuid.uuid4().hex
    lease = timedelta(seconds=60)
    while not stop.is_set():
        claimed = await outbox.claim(uow_factory(), owner, chats=3, per_chat=3, lease=lease)
        if not claimed:
            await asyncio.sleep(0.001)
        for _, rows in groupby(claimed, key=lambda delivery: delivery.chat_id):
            first, *rest = list(rows)
            await asyncio.sleep(random.uniform(0, 0.005))  # Telegram answering
            ledger.send(first)
            await outbox.record(uow_factory(), owner, [Sent(first.id, 1)])
            await outbox.record(uow_factory(), owner, outcomes_of(rest, ledger))


def outcomes_of(deliveries: list[Delivery], ledger: Ledger) -> list[Outcome]:
    """Most rows go; now and then one must be tried again at once, and the rest wait."""
    outcomes: list[Outcome] = []
    for index, delivery in enumerate(deliveries):
        if random.random() < 0.15:
            outcomes.append(RetryAt(delivery.id, clock.utcnow(), "Bad Gateway"))
            return outcomes + [Untried(later.id) for later in deliveries[index + 1 :]]
        ledger.send(delivery)
        outcomes.append(Sent(delivery.id, 1))
    return outcomes


async def test_senders_side_by_side_send_each_row_once_and_in_order(wide_engine: AsyncEngine):
    uow_factory = UnitOfWorkFactory(wide_engine)
    await hold_elsewhere(uow_factory)
    ledger, stop = Ledger(), asyncio.Event()
    tasks = [asyncio.create_task(write_notices(uow_factory, stop)) for _ in range(2)]
    tasks += [
        asyncio.create_task(send_as_a_sender(uow_factory, ledger, stop)) for _ in range(SENDERS)
    ]
    await asyncio.wait_for(ledger.enough.wait(), WITHIN_SECONDS)
    stop.set()
    await asyncio.gather(*tasks)

    assert sum(ledger.sends.values()) >= SENDS  # they did meet
    assert ledger.problems == []
