"""The project's own fake Telegram Bot API server: real HTTP, the bot cannot tell the difference.

It serves getUpdates from a queue the test fills, or, once the bot sets a webhook, posts each
update to it (to one of several instances at random, as a load balancer would), one chat's
updates in turn. It answers every other method like Telegram, and records each call so the
test can wait for what the bot did. Like Telegram it can be slow for a chat, refuse a chat
that blocked the bot, move a group to a supergroup, enforce flood limits, and fail a share
of sendMessage calls at random.
"""

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

BOT_ID = 4242
Params = dict[str, Any]
# Methods that put a message in a chat: what Telegram's flood limits count.
SENDING = ("sendMessage", "editMessageText", "editMessageReplyMarkup")


@dataclass
class Call:
    method: str
    params: Params
    result: Any
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def chat_id(self) -> int:
        return int(self.params.get("chat_id", 0))

    def buttons(self) -> list[tuple[str, str]]:
        markup = self.params.get("reply_markup") or {}
        rows = markup.get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


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
    if "message" in update:
        return int(update["message"]["chat"]["id"])
    return int(update["callback_query"]["from"]["id"])


def _error(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


@dataclass
class FakeTelegram:
    token: str
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    fail_get_me: int = 0
    # Chats whose calls Telegram answers only after this many seconds.
    slow: dict[int, float] = field(default_factory=dict)
    # Calls to slow chats as they arrive, and those whose caller hung up before the answer.
    arrived: list[Call] = field(default_factory=list)
    abandoned: list[Call] = field(default_factory=list)
    # Chats that blocked the bot, and groups that became supergroups (old id -> new id).
    blocked: set[int] = field(default_factory=set)
    migrated: dict[int, int] = field(default_factory=dict)
    floods: FloodRules | None = None
    faults: Faults | None = None
    refused: list[tuple[str, Params]] = field(default_factory=list)  # every error answered
    webhook: Webhook | None = None
    deliveries: Deliveries = field(default_factory=Deliveries)
    # Every update is delivered twice, as when the bot's 200 or its confirmation was lost on
    # the way: the webhook posts it again; getUpdates returns it once more after its offset.
    redeliver: bool = False
    _replays: list[dict[str, Any]] = field(default_factory=list)
    _confirmed: int = 0  # updates below this id were confirmed by an offset
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    @property
    def taken(self) -> int:
        """How many updates the bot has been told to be taken: confirmed by a getUpdates
        offset, or answered 200 on the webhook."""
        return max(self._confirmed - 1, len(self.deliveries.taken_by))

    @property
    def flood_refusals(self) -> int:
        return sum(1 for status, _ in self.refused if status == "429 flood")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        if method == "getUpdates":
            if self.webhook is not None:
                return _error(409, "Conflict: can't use getUpdates method while webhook is active")
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        if method == "getMe" and self.fail_get_me > 0:
            self.fail_get_me -= 1
            return _error(502, "Bad Gateway")
        if method in SENDING and (refusal := self._refusal(request, method, params)):
            return refusal
        result = self._result(method, params)
        call = Call(method, params, result)
        if delay := self.slow.get(call.chat_id):
            await self._record(self.arrived, call)
            await self._answer_after(request, delay)
            if request.transport is None or request.transport.is_closing():
                self.abandoned.append(call)
        await self._record(self.calls, call)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _answer_after(request: web.Request, delay: float) -> None:
        """Wait `delay` before answering, or less if the caller hangs up (a killed bot)."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(min(0.1, deadline - time.monotonic()))

    def _refusal(self, request: web.Request, method: str, params: Params) -> web.Response | None:
        """What Telegram would answer instead of doing it, if anything."""
        chat_id = int(params.get("chat_id", 0))
        if chat_id in self.blocked:
            self.refused.append(("403", params))
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.migrated:
            self.refused.append(("400 migrated", params))
            return _error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self.migrated[chat_id],
            )
        if self.faults and method == "sendMessage" and (kind := self.faults.pick()):
            self.refused.append((kind, params))
            if kind == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)  # never reaches the closed connection
            if kind == "429":
                return _error(429, "Too Many Requests: retry after 1", retry_after=1)
            return _error(500, "Internal Server Error")
        if self.floods and (wait := self.floods.wait(chat_id)):
            self.refused.append(("429 flood", params))
            seconds = max(1, round(wait + 0.5))
            return _error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
        return None

    @staticmethod
    async def _params(request: web.Request) -> Params:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        params: Params = {}
        for key, value in form.items():
            try:
                params[key] = json.loads(str(value))
            except ValueError:
                params[key] = str(value)
        return params

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        """Like Telegram: an offset confirms the updates before it, which are then gone."""
        confirmed = max(self._confirmed, int(params.get("offset") or 0))
        if self.redeliver:  # the confirmation is lost: those updates come once more
            self._replays += [
                u for u in self.updates if self._confirmed <= u["update_id"] < confirmed
            ]
        self._confirmed = confirmed
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        async with self._changed:
            while True:
                if self._replays:
                    replays, self._replays = self._replays, []
                    return replays
                fresh = [u for u in self.updates if u["update_id"] >= self._confirmed]
                remaining = deadline - time.monotonic()
                if fresh or remaining <= 0:
                    return fresh
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    def _result(self, method: str, params: Params) -> Any:
        if method in ("setWebhook", "deleteWebhook", "getWebhookInfo"):
            return self._webhook_method(method, params)
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Dispatch",
                "username": "dispatch_bot",
            }
        if method in SENDING:
            message_id = int(params.get("message_id") or next(self._ids) + 1000)
            chat_id = int(params["chat_id"])
            result = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Dispatch"},
                "text": params.get("text", ""),
            }
            markup = params.get("reply_markup")
            if isinstance(markup, dict) and "inline_keyboard" in markup:
                result["reply_markup"] = markup  # Telegram echoes inline keyboards only
            return result
        return True

    def _webhook_method(self, method: str, params: Params) -> Any:
        if method == "setWebhook":
            self.webhook = Webhook(
                params["url"], params.get("secret_token", ""), params.get("allowed_updates", [])
            )
        elif method == "deleteWebhook":
            self.webhook = None
        else:
            url = self.webhook.url if self.webhook else ""
            return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}
        return True

    async def _record(self, calls: list[Call], call: Call) -> None:
        async with self._changed:
            calls.append(call)
            self._changed.notify_all()

    # What a test does.

    async def _push(self, **update: Any) -> None:
        async with self._changed:
            self.updates.append({"update_id": len(self.updates) + 1, **update})
            if self.webhook is not None:
                for _ in range(2 if self.redeliver else 1):
                    self.deliveries.post(self.webhook, self.updates[-1])
            self._changed.notify_all()

    async def send(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        language: str = "en",
        name: str = "Ann",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """A message from the user; `extra`: fields the message carries besides."""
        chat = {"id": chat_id or user_id, "type": "private" if chat_id is None else "supergroup"}
        if chat_id is not None:
            chat["title"] = "Dispatch"
        await self._push(
            message={
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": chat,
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": name,
                    "language_code": language,
                },
                "text": text,
                **(extra or {}),
            }
        )

    async def tap(self, user_id: int, message: Call, data: str, *, language: str = "en") -> None:
        await self._push(
            callback_query={
                "id": str(next(self._ids)),
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": "Someone",
                    "language_code": language,
                },
                "chat_instance": "fake",
                "message": message.result,
                "data": data,
            }
        )

    def mark(self) -> int:
        """A point in the call log; pass it as `since` to wait only for later calls."""
        return len(self.calls)

    async def wait_for(
        self,
        predicate: Callable[[Call], bool],
        *,
        since: int = 0,
        within: float = 15.0,
        arrived: bool = False,
    ) -> Call:
        """The first call from `since` on, past or future, that matches; `arrived`: among the
        calls to slow chats that are still waiting for their answer."""
        calls = self.arrived if arrived else self.calls

        def found() -> Call | None:
            return next((c for c in calls[since:] if predicate(c)), None)

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), within)
        except TimeoutError:
            seen = "\n".join(f"  {c.method} {c.params}" for c in calls[since:])
            raise AssertionError(
                f"no matching call within {within} s; since then:\n{seen}"
            ) from None
        call = found()
        assert call is not None
        return call

    async def wait_until(self, condition: Callable[[], bool], *, within: float) -> None:
        """Until `condition()` holds, looked at whenever a call is recorded."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), within)


@contextlib.asynccontextmanager
async def serving(fake: FakeTelegram) -> AsyncIterator[tuple[FakeTelegram, str]]:
    """The fake server on a free port of loopback: (it, its base URL) until the block ends."""
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await fake.deliveries.close()
        await runner.cleanup()
