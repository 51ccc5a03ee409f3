"""The flood limiter keeps to Telegram's limits: counted on a clock that moves only when the
limiter sleeps, so the test is exact and takes no time."""

import asyncio

import pytest

from bot.limits import MARGIN, FloodLimiter


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
    limiter.pause(5)
    assert await send_times(limiter, clock, 7, 1) == [5]
    assert await send_times(limiter, clock, 8, 1) == [5]
