"""Webhook delivery as Telegram does it: each chat's updates posted in turn, until a 200."""

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Webhook:
    url: str
    secret: str
    allowed_updates: list[str]


class Deliveries:
    """Webhook delivery: each chat's updates in order, each posted until an instance takes it
    with a 200 (another one at random after a failure), chats in parallel."""

    def __init__(self) -> None:
        self.instances: list[str] = []  # where to post; none: the webhook's own URL
        self.taken_by: dict[int, str] = {}  # update id -> the instance that answered 200
        self.refusals: list[tuple[str, int]] = []  # (instance, HTTP status or 0: unreachable)
        self._chats: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._rng = random.Random(11)
        self._session: aiohttp.ClientSession | None = None

    def post(self, webhook: Webhook, update: dict[str, Any]) -> None:
        chat = _chat_of(update)
        if chat not in self._chats:
            self._chats[chat] = asyncio.Queue()
            self._workers.append(asyncio.create_task(self._deliver(webhook, self._chats[chat])))
        self._chats[chat].put_nowait(update)

    async def _deliver(self, webhook: Webhook, queue: asyncio.Queue[dict[str, Any]]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"X-Telegram-Bot-Api-Secret-Token": webhook.secret}
        while True:
            update = await queue.get()
            while True:
                target = self._rng.choice(self.instances or [webhook.url])
                try:
                    async with self._session.post(target, json=update, headers=headers) as answer:
                        status = answer.status
                except aiohttp.ClientError:
                    status = 0
                if status == 200:
                    self.taken_by[update["update_id"]] = target
                    break
                self.refusals.append((target, status))
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def _chat_of(update: dict[str, Any]) -> int:
    for kind in ("message", "edited_message"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    return int(update["callback_query"]["from"]["id"])
