"""The inbox: updates stored, handled once each, in order per chat, whatever stops a worker;
on SQLite and PostgreSQL."""

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.types import Chat, Message, Update
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from bot.telegram.inbox import InboxSettings, InboxWorker, incoming
from db.models import InboxUpdate, Order
from services import inbox, pruning
from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness
from tests.conftest import FakeClock
from tests.helpers import DISPATCH_CHAT, DISPATCHER

SETTLED_WITHIN = 10.0


def worker_of(harness: Harness, lease: float = 60.0) -> InboxWorker:
    settings = InboxSettings(poll_seconds=0.05, lease=timedelta(seconds=lease))
    return InboxWorker(harness.dispatcher, harness.bot, harness.uow_factory, settings)


def message(
    update_id: int, text: str, *, user: int = DISPATCHER, chat: int = DISPATCH_CHAT
) -> Update:
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime.now(UTC),
            chat=Chat(id=chat, type="supergroup" if chat < 0 else "private"),
            from_user={"id": user, "is_bot": False, "first_name": "Di"},
            text=text,
        ),
    )


async def run_until_settled(worker: InboxWorker) -> None:
    worker.wake()
    running = asyncio.create_task(worker.run())
    try:
        assert await worker.settle(SETTLED_WITHIN)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def descriptions(harness: Harness) -> list[str]:
    uow = harness.uow_factory()
    async with uow.read():
        return list(await uow.session.scalars(select(Order.description).order_by(Order.id)))


async def states(harness: Harness) -> dict[str, int]:
    uow = harness.uow_factory()
    async with uow.read():
        rows = await uow.session.execute(
            select(InboxUpdate.state, func.count()).group_by(InboxUpdate.state)
        )
        return {str(state): count for state, count in rows.all()}


async def test_each_update_has_its_effect_once_in_the_order_it_came(
    harness_on_each_database: Harness,
):
    harness = harness_on_each_database
    await add_districts(harness, "North")
    worker = worker_of(harness)
    updates = [message(n, f"/order North parcel {n}") for n in range(1, 21)]

    assert await worker.store([incoming(u) for u in updates]) == 20
    assert await worker.store([incoming(u) for u in updates[:5]]) == 0  # copies: ignored
    await run_until_settled(worker)
    await worker.store([incoming(u) for u in updates])  # copies of handled updates
    await run_until_settled(worker)

    assert await descriptions(harness) == [f"parcel {n}" for n in range(1, 21)]
    assert await states(harness) == {"done": 20}


async def test_a_worker_that_died_mid_chat_is_taken_over_once_its_lease_ends(
    harness_on_each_database: Harness, fake_clock: FakeClock
):
    """The first worker claimed the chat's updates and died before handling them."""
    harness = harness_on_each_database
    await add_districts(harness, "North")
    dead = worker_of(harness)
    await dead.store([incoming(message(n, f"/order North parcel {n}")) for n in (1, 2)])
    claimed = await inbox.claim(
        harness.uow_factory(), dead.owner, chats=10, per_chat=10, lease=timedelta(seconds=30)
    )
    assert len(claimed) == 2
    successor = worker_of(harness)

    await run_until_settled(successor)
    assert await descriptions(harness) == []  # the lease still stands
    fake_clock.advance(seconds=31)
    await run_until_settled(successor)

    assert await descriptions(harness) == ["parcel 1", "parcel 2"]


async def test_an_update_whose_effects_committed_is_not_handled_again(
    harness_on_each_database: Harness,
):
    """The process died after the order committed, before the row was recorded done: the
    commit marked it done, so the next worker does not post it again."""
    harness = harness_on_each_database
    await add_districts(harness, "North")
    first = worker_of(harness)
    await first.store([incoming(message(1, "/order North soup"))])
    (row,) = await inbox.claim(
        harness.uow_factory(), first.owner, chats=1, per_chat=1, lease=timedelta(seconds=30)
    )
    await harness.dispatcher.feed_update(
        harness.bot, message(1, "/order North soup"), stamp=inbox.done_stamp(row.id, first.owner)
    )
    await inbox.give_back(harness.uow_factory(), None)  # a restart on SQLite takes it back

    await run_until_settled(worker_of(harness))

    assert await descriptions(harness) == ["soup"]
    assert await states(harness) == {"done": 1}


async def test_a_form_whose_order_committed_is_finished_whatever_fails_after(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
):
    """Redis goes away just after the step-by-step form's order commits: the form could not
    be closed, and the dispatcher taps its last Skip again. No second order."""
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await approve_all(harness)
    sent = await harness.send(DISPATCHER, "/order", chat_id=DISPATCH_CHAT)
    district = next(r for r in sent if getattr(r, "reply_markup", None)).reply_markup
    await harness.tap(
        DISPATCHER, district.inline_keyboard[0][0].callback_data, chat_id=DISPATCH_CHAT
    )
    asked = await harness.send(DISPATCHER, "soup", chat_id=DISPATCH_CHAT)
    skip = next(r for r in asked if getattr(r, "reply_markup", None)).reply_markup
    skip_data = skip.inline_keyboard[0][0].callback_data
    await harness.tap(DISPATCHER, skip_data, chat_id=DISPATCH_CHAT)  # no pickup point
    storage = harness.dispatcher.fsm.storage
    real_set_state = storage.set_state

    async def redis_blip(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(storage, "set_state", real_set_state)  # back after one failure
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(storage, "set_state", redis_blip)
    with pytest.raises(RedisConnectionError):  # the inbox would record the update done
        await harness.tap(DISPATCHER, skip_data, chat_id=DISPATCH_CHAT)  # nor a drop-off
    again = await harness.tap(DISPATCHER, skip_data, chat_id=DISPATCH_CHAT)

    assert await descriptions(harness) == ["soup"]
    assert any(
        "was posted from this message already" in (getattr(r, "text", None) or "") for r in again
    )


async def test_an_update_that_finds_the_database_locked_is_handled_later_not_refused(
    harness: Harness, fake_clock: FakeClock
):
    """Another process holds SQLite's write lock past the writer's patience: the update is
    handled again once it is free, and nobody is told something went wrong."""
    await add_districts(harness, "North")
    harness.uow_factory.lock_wait = 0.2
    worker = worker_of(harness)
    await worker.store([incoming(message(1, "/order North soup"))])
    database = harness.uow_factory.engine.url.database or ""
    other = sqlite3.connect(database, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(1.0)
        assert await descriptions(harness) == []
        other.rollback()
        fake_clock.advance(seconds=5)  # past its backoff
        worker.wake()
        assert await worker.settle(SETTLED_WITHIN)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        other.close()

    assert await descriptions(harness) == ["soup"]
    assert not [r for r in harness.session.requests if "went wrong" in getattr(r, "text", "")]


async def test_handled_updates_are_pruned_a_batch_at_a_time(
    harness_on_each_database: Harness, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    harness = harness_on_each_database
    await add_districts(harness, "North")
    worker = worker_of(harness)
    await worker.store([incoming(message(n, "/orders")) for n in range(1, 6)])
    await run_until_settled(worker)
    await worker.store([incoming(message(6, "/orders"))])  # still waiting: kept
    fake_clock.advance(days=3)

    monkeypatch.setattr(pruning, "BATCH", 2)
    assert await inbox.prune(harness.uow_factory(), timedelta(days=2)) == 5
    assert await states(harness) == {"pending": 1}
    assert await worker.store([incoming(message(6, "/orders"))]) == 0
