"""The flood limiter keeps to Telegram's limits, alone or with other instances through Redis:
counted on a clock that moves only when the limiter sleeps, so the test is exact and takes no
time."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.app import build_bot
from bot.telegram.lanes import UNDER_LEASE, LeaseLost
from bot.telegram.limits import MARGIN, FloodLimiter, SharedWindows
from tests.bot.conftest import settings
from tests.bot.harness import RecordingSession


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def send_times(limiter: FloodLimiter, clock: Clock, chat: int, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await limiter.acquire(chat)
        times.append(round(clock.now, 3))
    return times


async def test_a_private_chat_gets_a_burst_of_three_then_one_a_second(clock: Clock):
    limiter = FloodLimiter(30, clock, clock.sleep)
    times = await send_times(limiter, clock, 7, 6)
    window = round(3 * MARGIN, 3)
    assert times == [0, 0, 0, window, window, window]


async def test_a_group_gets_twenty_a_minute(clock: Clock):
    limiter = FloodLimiter(30, clock, clock.sleep)
    times = await send_times(limiter, clock, -100, 21)
    assert times[:20] == [0] * 20
    assert times[20] == round(60 * MARGIN, 3)


async def test_thirty_a_second_overall(clock: Clock):
    limiter = FloodLimiter(30, clock, clock.sleep)
    times = [t for chat in range(1, 41) for t in await send_times(limiter, clock, chat, 1)]
    assert times[:30] == [0] * 30
    assert times[30:] == [round(MARGIN, 3)] * 10


async def test_a_pause_holds_every_chat(clock: Clock):
    limiter = FloodLimiter(30, clock, clock.sleep)
    await limiter.pause(5)
    assert await send_times(limiter, clock, 7, 1) == [5]
    assert await send_times(limiter, clock, 8, 1) == [5]


@pytest.fixture
async def shared(redis_url: str, clock: Clock) -> AsyncIterator[SharedWindows]:
    redis = Redis.from_url(redis_url)
    yield SharedWindows(redis, 30, clock)
    await redis.aclose()


async def test_two_instances_keep_to_thirty_a_second_together(clock: Clock, shared: SharedWindows):
    one, two = (FloodLimiter(30, clock, clock.sleep, shared) for _ in range(2))
    times = []
    for chat in range(1, 41):  # each sends to its own chats
        times += await send_times(one if chat % 2 else two, clock, chat, 1)
    assert times[:30] == [0] * 30
    assert times[30:] == [round(MARGIN, 3)] * 10


async def test_two_instances_share_a_chat_window(clock: Clock, shared: SharedWindows):
    one, two = (FloodLimiter(30, clock, clock.sleep, shared) for _ in range(2))
    times = [t for limiter in (one, two, one, two) for t in await send_times(limiter, clock, 7, 1)]
    assert times == [0, 0, 0, round(3 * MARGIN, 3)]


async def test_a_pause_on_one_instance_holds_the_other(clock: Clock, shared: SharedWindows):
    one, two = (FloodLimiter(30, clock, clock.sleep, shared) for _ in range(2))
    await one.pause(5)
    assert await send_times(two, clock, 8, 1) == [5]


async def test_a_chat_waiting_on_other_instances_holds_up_no_other_chat(
    clock: Clock, shared: SharedWindows
):
    """Instance two used a group's twenty a minute; on instance one, a message to that group
    waits for the window, and a private chat's message goes first meanwhile."""
    one, two = (FloodLimiter(30, clock, clock.sleep, shared) for _ in range(2))
    await send_times(two, clock, -100, 20)
    done: list[int] = []

    async def send(chat: int) -> None:
        await one.acquire(chat)
        done.append(chat)

    await asyncio.gather(send(-100), send(8))
    assert done == [8, -100]


async def test_a_message_that_waited_for_its_slot_goes_only_under_its_lease():
    """A sender's lane checks its lease again once the flood limit let the message go."""
    bot = build_bot(settings(), RecordingSession(), limiter=FloodLimiter(1000))
    UNDER_LEASE.set(lambda: False)
    with pytest.raises(LeaseLost):
        await bot.send_message(7, "offer")
    UNDER_LEASE.set(lambda: True)
    assert (await bot.send_message(7, "offer")).text == "offer"
    assert [r.text for r in bot.session.requests] == ["offer"]  # type: ignore[attr-defined]
