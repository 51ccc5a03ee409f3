"""Telegram's flood limits, kept on our side so that Telegram rarely has to say 429.

Every message the bot sends or edits, from a handler or from the outbox sender, waits here
for a slot: at most SEND_RATE_LIMIT a second overall, about one a second in a private chat
(with bursts of three), twenty a minute in a group.

Several instances keep to the limits together: with Redis, every slot is also taken in the
same windows kept there (SharedWindows), on Redis's clock.
"""

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

# Windows are 5% longer than Telegram's, for the clocks of the network and the server.
MARGIN = 1.05
PRIVATE_CHAT = (3, 3.0 * MARGIN)  # 3 messages in any 3 seconds: one a second, small bursts
GROUP_CHAT = (20, 60.0 * MARGIN)  # 20 messages in any minute


@dataclass
class SlidingWindow:
    """At most `capacity` events in any `seconds`; `acquire` waits for the next free slot."""

    capacity: int
    seconds: float
    _times: deque[float] = field(default_factory=deque)

    def wait_needed(self, now: float) -> float:
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        if len(self._times) < self.capacity:
            return 0.0
        return self._times[0] + self.seconds - now

    def take(self, now: float) -> None:
        self._times.append(now)

    def idle_since(self, now: float) -> bool:
        return not self._times or self._times[-1] <= now - self.seconds


def overall_window(per_second: float) -> tuple[int, float]:
    """The overall window: a second's worth of messages in a (slightly long) second."""
    burst = max(1, round(per_second))
    return burst, burst / per_second * MARGIN


def chat_window(chat_id: int) -> tuple[int, float]:
    return PRIVATE_CHAT if chat_id > 0 else GROUP_CHAT


# The time: the caller's (tests), or Redis's own, which every instance shares.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""
# Both windows checked and taken in one step, or the seconds to wait; a pause counts too.
_TAKE = (
    _NOW
    + """
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return tostring(paused - now) end
local function wait(key, capacity, seconds)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - seconds)
    if redis.call('ZCARD', key) < capacity then return 0 end
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return tonumber(oldest[2]) + seconds - now
end
local overall = wait(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]))
local chat = wait(KEYS[2], tonumber(ARGV[5]), tonumber(ARGV[6]))
if math.max(overall, chat) > 0 then return tostring(math.max(overall, chat)) end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[6])) + 1)
return '0'
"""
)
_PAUSE = (
    _NOW
    + """
local until_ = now + tonumber(ARGV[2])
if tonumber(redis.call('GET', KEYS[1]) or '0') < until_ then
    redis.call('SET', KEYS[1], tostring(until_), 'EX', math.ceil(tonumber(ARGV[2])) + 1)
end
return 1
"""
)


class SharedWindows:
    """The flood windows in Redis, for every instance at once, on Redis's clock (or on
    `clock`, for tests). Keys share one hash slot, so the scripts also run on a cluster."""

    PREFIX = "dispatch:flood:{limits}"

    def __init__(
        self, redis: Redis, per_second: float, clock: Callable[[], float] | None = None
    ) -> None:
        self._take = redis.register_script(_TAKE)
        self._pause = redis.register_script(_PAUSE)
        self._overall = overall_window(per_second)
        self._clock = clock

    async def take(self, chat_id: int) -> float:
        """0 when this chat's slot and an overall one were taken; else the seconds to wait."""
        capacity, seconds = chat_window(chat_id)
        keys = [f"{self.PREFIX}:overall", f"{self.PREFIX}:chat:{chat_id}", self._pause_key]
        wait = await self._take(
            keys, [self._now(), uuid.uuid4().hex, *self._overall, capacity, seconds]
        )
        return float(wait)

    async def pause(self, seconds: float) -> None:
        await self._pause([self._pause_key], [self._now(), seconds])

    @property
    def _pause_key(self) -> str:
        return f"{self.PREFIX}:paused-until"

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())


class FloodLimiter:
    """Slots for sending, per chat and overall. Waiters for the overall slot queue in turn."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared: SharedWindows | None = None,
    ) -> None:
        self._overall = SlidingWindow(*overall_window(per_second))
        self._chats: dict[int, SlidingWindow] = {}
        self._turn = asyncio.Lock()
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._shared = shared

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to this chat may go, and take its slot in the chat's window
        and in the overall one together (so a long wait overall never bunches a chat up)."""
        chat = self._chat(chat_id)
        while True:
            await self._wait_for(chat)
            async with self._turn:
                await self._sleep(max(0.0, self._paused_until - self._clock()))
                await self._wait_for(self._overall)
                if chat.wait_needed(self._clock()) > 0:
                    continue
                shared_wait = await self._take_shared(chat_id)
                if shared_wait == 0:
                    now = self._clock()
                    chat.take(now)
                    self._overall.take(now)
                    return
            # Other instances used this chat's window: wait without holding up other chats.
            await self._sleep(shared_wait)

    async def pause(self, seconds: float) -> None:
        """Telegram limited the bot as a whole: nothing goes out for a while, anywhere."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        if self._shared is not None:
            await self._shared.pause(seconds)

    async def _take_shared(self, chat_id: int) -> float:
        """The same slot in the windows all instances share, if they do: 0 when taken (or
        nothing is shared), else the seconds until one may be free."""
        return 0.0 if self._shared is None else await self._shared.take(chat_id)

    async def _wait_for(self, window: SlidingWindow) -> None:
        """Until the window has room (looked at again after each sleep: others use it too)."""
        while (wait := window.wait_needed(self._clock())) > 0:
            await self._sleep(wait)

    def _chat(self, chat_id: int) -> SlidingWindow:
        window = self._chats.get(chat_id)
        if window is None:
            if len(self._chats) > 10_000:
                self._forget_idle()
            window = self._chats[chat_id] = SlidingWindow(*chat_window(chat_id))
        return window

    def _forget_idle(self) -> None:
        now = self._clock()
        for chat_id in [c for c, w in self._chats.items() if w.idle_since(now)]:
            del self._chats[chat_id]
