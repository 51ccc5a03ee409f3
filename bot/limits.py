"""Telegram's flood limits, kept on our side so that Telegram rarely has to say 429.

Every message the bot sends or edits, from a handler or from the outbox sender, waits here
for a slot: at most SEND_RATE_LIMIT a second overall, about one a second in a private chat
(with bursts of three), twenty a minute in a group.
"""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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


class FloodLimiter:
    """Slots for sending, per chat and overall. Waiters for the overall slot queue in turn."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        burst = max(1, round(per_second))
        self._overall = SlidingWindow(burst, burst / per_second * MARGIN)
        self._chats: dict[int, SlidingWindow] = {}
        self._turn = asyncio.Lock()
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to this chat may go, and take its slot in the chat's window
        and in the overall one together (so a long wait overall never bunches a chat up)."""
        chat = self._chat(chat_id)
        while True:
            await self._wait_for(chat)
            async with self._turn:
                await self._sleep(max(0.0, self._paused_until - self._clock()))
                await self._wait_for(self._overall)
                if chat.wait_needed(self._clock()) == 0:
                    now = self._clock()
                    chat.take(now)
                    self._overall.take(now)
                    return

    def pause(self, seconds: float) -> None:
        """Telegram limited the bot as a whole: nothing goes out for a while."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def _wait_for(self, window: SlidingWindow) -> None:
        """Until the window has room (looked at again after each sleep: others use it too)."""
        while (wait := window.wait_needed(self._clock())) > 0:
            await self._sleep(wait)

    def _chat(self, chat_id: int) -> SlidingWindow:
        window = self._chats.get(chat_id)
        if window is None:
            if len(self._chats) > 10_000:
                self._forget_idle()
            capacity, seconds = PRIVATE_CHAT if chat_id > 0 else GROUP_CHAT
            window = self._chats[chat_id] = SlidingWindow(capacity, seconds)
        return window

    def _forget_idle(self) -> None:
        now = self._clock()
        for chat_id in [c for c, w in self._chats.items() if w.idle_since(now)]:
            del self._chats[chat_id]
