"""With Redis, one user's updates take turns across instances: each instance's Dispatcher
gets its storage and event isolation from `build_storage`, all on one Redis."""

import asyncio
from datetime import UTC, datetime

from aiogram import Dispatcher, Router
from aiogram.types import Chat, Message, Update, User
from redis.asyncio import Redis

from bot.app import build_bot, build_storage
from tests.bot.conftest import settings
from tests.bot.harness import RecordingSession


def instance(redis: Redis | None, spans: list[tuple[str, float, float]]) -> Dispatcher:
    storage, isolation = build_storage(redis)
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
    router = Router()

    @router.message()
    async def slow(message: Message) -> None:
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.2)
        spans.append((message.text or "", started, asyncio.get_running_loop().time()))

    dispatcher.include_router(router)
    return dispatcher


def update(n: int, user: int) -> Update:
    message = Message(
        message_id=n,
        date=datetime.now(UTC),
        chat=Chat(id=user, type="private"),
        from_user=User(id=user, is_bot=False, first_name="Ann"),
        text=f"update {n}",
    )
    return Update(update_id=n, message=message)


async def overlaps(redis: Redis | None, users: tuple[int, int]) -> bool:
    """Whether two updates, one on each of two instances, were handled at the same time."""
    spans: list[tuple[str, float, float]] = []
    bot = build_bot(settings(), RecordingSession())
    one, two = instance(redis, spans), instance(redis, spans)
    await asyncio.gather(
        one.feed_update(bot, update(1, users[0])), two.feed_update(bot, update(2, users[1]))
    )
    first, second = sorted(spans, key=lambda span: span[1])
    return second[1] < first[2]  # the second began before the first ended


async def test_one_users_updates_take_turns_across_instances(redis_url: str):
    redis = Redis.from_url(redis_url)
    try:
        assert not await overlaps(redis, (7, 7))
        assert await overlaps(redis, (7, 8))  # other users are not held up
    finally:
        await redis.aclose()


async def test_without_redis_each_instance_isolates_only_its_own_updates():
    """What Redis is for: two processes' in-memory isolation cannot see each other."""
    assert await overlaps(None, (7, 7))
