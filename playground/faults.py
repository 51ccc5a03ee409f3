"""Telegram misbehaving on purpose, for tests: flood limits as documented, and a share of
calls that fail."""

import random
import time
from dataclasses import dataclass, field


@dataclass
class Bucket:
    """A token bucket: `capacity` at once, refilled at `rate` a second."""

    capacity: float
    rate: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one will be there."""
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.capacity
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class FloodRules:
    """Telegram's limits as documented: about 30 messages a second overall, one a second in
    a private chat (short bursts tolerated), twenty a minute in a group."""

    per_second: float = 30.0
    overall: Bucket = field(init=False)
    chats: dict[int, Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.overall = Bucket(self.per_second, self.per_second)

    def wait(self, chat_id: int) -> float:
        if chat_id not in self.chats:
            self.chats[chat_id] = Bucket(3, 1.0) if chat_id > 0 else Bucket(20, 20 / 60)
        return self.chats[chat_id].take() or self.overall.take()


@dataclass
class Faults:
    """A share of sendMessage calls fail: 429, 500 or a dropped connection, in equal parts.
    A failed call never delivers its message."""

    share: float
    seed: int = 7
    counts: dict[str, int] = field(default_factory=lambda: {"429": 0, "500": 0, "drop": 0})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self) -> str | None:
        if self._rng.random() >= self.share:
            return None
        kind = self._rng.choice(["429", "500", "drop"])
        self.counts[kind] += 1
        return kind
