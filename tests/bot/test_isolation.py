"""One chat's updates take turns, in the order they came, across instances: two inbox workers
(two instances) on one database, SQLite and PostgreSQL; other chats are not held up."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from aiogram import Dispatcher, Router
from aiogram.types import Chat, Message, Update, User

from bot.app import build_bot, build_storage
from bot.telegram.inbox import InboxSettings, InboxWorker, incoming
from db.uow import Stamp, UnitOfWorkFactory
from tests.bot.conftest import settings
from tests.bot.harness import RecordingSession

Span = tuple[int, str, float, float]  # chat, text, start, end


def instance(uow_factory: UnitOfWorkFactory, spans: list[Span]) -> InboxWorker:
    storage, isolation = build_storage(None)
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
    router = Router()

    @router.message()
    async def slow(message: Message) -> None:
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.05)
        spans.append(
            (message.chat.id, message.text or "", started, asyncio.get_running_loop().time())
        )

    dispatcher.include_router(router)
    bot = build_bot(settings(), RecordingSession())
    inbox = InboxSettings(poll_seconds=0.02, lease=timedelta(seconds=30), per_chat=2)
    return InboxWorker(dispatcher, bot, uow_factory, inbox)


def update(n: int, user: int) -> Update:
    message = Message(
        message_id=n,
        date=datetime.now(UTC),
        chat=Chat(id=user, type="private"),
        from_user=User(id=user, is_bot=False, first_name="Ann"),
        text=f"update {n}",
    )
    return Update(update_id=n, message=message)


async def test_a_chats_updates_take_turns_in_order_across_instances(
    uow_factory: UnitOfWorkFactory,
):
    spans: list[Span] = []
    one, two = instance(uow_factory, spans), instance(uow_factory, spans)
    updates = [update(n, 7 if n % 2 else 8) for n in range(1, 21)]
    await one.store([incoming(u) for u in updates[::2]])
    await two.store([incoming(u) for u in updates[1::2]])
    running = [asyncio.create_task(worker.run()) for worker in (one, two)]
    try:
        async with asyncio.timeout(10):
            while len(spans) < len(updates):  # noqa: ASYNC110  # spans come from the handlers
                await asyncio.sleep(0.05)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    assert len(spans) == 20
    for chat in (7, 8):
        mine = [span for span in spans if span[0] == chat]
        assert [text for _, text, _, _ in mine] == [
            f"update {n}" for n in range(1, 21) if (7 if n % 2 else 8) == chat
        ]
        assert all(later[2] >= earlier[3] for earlier, later in itertools.pairwise(mine))
    overlapping = any(a[0] != b[0] and a[2] < b[3] and b[2] < a[3] for a in spans for b in spans)
    assert overlapping  # other chats are not held up


async def test_the_next_update_waits_for_the_tail_of_a_handler_whose_effects_committed(
    uow_factory: UnitOfWorkFactory,
):
    """The first update's effects commit (its row is done), then its handler still answers
    and writes its dialog's state: the chat's next update, on another instance, waits."""
    spans: list[Span] = []

    def committing(name: str) -> InboxWorker:
        dispatcher = Dispatcher(events_isolation=build_storage(None)[1])
        router = Router()

        @router.message()
        async def handler(message: Message, stamp: Stamp) -> None:
            started = asyncio.get_running_loop().time()
            uow = uow_factory(stamp)
            async with uow.write():  # its effects
                await uow.commit()
            await asyncio.sleep(0.3)  # its answer, its dialog's state
            spans.append((message.chat.id, name, started, asyncio.get_running_loop().time()))

        dispatcher.include_router(router)
        inbox = InboxSettings(poll_seconds=0.02, lease=timedelta(seconds=30))
        bot = build_bot(settings(), RecordingSession())
        return InboxWorker(dispatcher, bot, uow_factory, inbox)

    first, second = committing("first"), committing("second")
    await first.store([incoming(update(1, 7))])
    running = [asyncio.create_task(first.run())]
    await asyncio.sleep(0.1)  # inside the first handler, after its commit
    await second.store([incoming(update(2, 7))])
    running.append(asyncio.create_task(second.run()))
    try:
        async with asyncio.timeout(10):
            while len(spans) < 2:  # noqa: ASYNC110  # spans come from the handlers
                await asyncio.sleep(0.05)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    one, two = sorted(spans, key=lambda span: span[2])
    assert two[2] >= one[3]  # the second began after the first ended
