"""The updates being handled right now, so that a shutdown can let them finish."""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject


class UpdatesInFlight(BaseMiddleware):
    """An outer update middleware that counts the updates between arrival and answer."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def drain(self, seconds: float) -> int:
        """Wait up to `seconds` for every update in flight; how many were left."""
        await asyncio.sleep(0)  # updates taken just before the stop reach the middleware
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        return self.count
