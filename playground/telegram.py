"""A Telegram Bot API emulator: real HTTP, the bot cannot tell the difference. The playground
runs the bot against it, and the tests do.

It serves getUpdates from the updates people make (`send`, `tap`, `send_location`), or, once
the bot sets a webhook, posts each update to it (to one of several instances at random, as a
load balancer would), one chat's updates in turn. It answers every other method like
Telegram, records each call so that a test can wait for what the bot did, and keeps each
private chat as its person sees it (`chats`). Like Telegram it can be slow for a chat, refuse
a chat that blocked the bot, move a group to a supergroup, enforce flood limits, and fail a
share of sendMessage calls at random.
"""

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from playground.chats import ChatLog
from playground.faults import Faults, FloodRules
from playground.webhooks import Deliveries, Webhook

BOT_ID = 4242
Params = dict[str, Any]
# Methods that put a message in a chat: what Telegram's flood limits count.
SENDING = ("sendMessage", "sendVenue", "editMessageText", "editMessageReplyMarkup")


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


def _person(user_id: int, name: str, language: str) -> Params:
    return {"id": user_id, "is_bot": False, "first_name": name, "language_code": language}


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
    chats: ChatLog = field(default_factory=ChatLog)
    # Every update is delivered twice, as when the bot's 200 or its confirmation was lost on
    # the way: the webhook posts it again; getUpdates returns it once more after its offset.
    redeliver: bool = False
    _replays: list[dict[str, Any]] = field(default_factory=list)
    _confirmed: int = 0  # updates below this id were confirmed by an offset
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))
    _tapped: dict[str, int] = field(default_factory=dict)  # callback query id -> who tapped
    # Live locations being shared: (user, message id) -> (sent at, live period).
    _live: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    # The playground's: no history of calls and updates, so that it runs for days in the same
    # memory (tests look back at both).
    forgetful: bool = False
    _last_update: int = 0

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
        self.chats.sent(method, params, result)
        if method == "answerCallbackQuery":
            self.chats.popup(self._tapped.pop(str(params.get("callback_query_id")), 0), call.text)
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
        if self.forgetful:
            self.updates = [u for u in self.updates if u["update_id"] >= confirmed]
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
            if method == "sendVenue":
                del result["text"]
                place = {"latitude": params["latitude"], "longitude": params["longitude"]}
                result["location"] = place
                result["venue"] = {
                    "location": place,
                    "title": params.get("title", ""),
                    "address": params.get("address", ""),
                }
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
            if not self.forgetful:
                calls.append(call)
            self._changed.notify_all()

    # What a test does.

    async def _push(self, **update: Any) -> None:
        async with self._changed:
            self._last_update += 1
            self.updates.append({"update_id": self._last_update, **update})
            if self.webhook is not None:
                for _ in range(2 if self.redeliver else 1):
                    self.deliveries.post(self.webhook, self.updates[-1])
            self._changed.notify_all()

    async def send(
        self,
        user_id: int,
        text: str | None,
        *,
        chat_id: int | None = None,
        language: str = "en",
        name: str = "Ann",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """A message from the user, in their private chat or the group `chat_id`; `extra`:
        fields the message carries besides (or instead of) a text."""
        where = chat_id or user_id
        chat = {"id": where, "type": "private" if chat_id is None else "supergroup"}
        if chat_id is not None:
            chat["title"] = "Dispatch"
        message: Params = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "from": _person(user_id, name, language),
            **({"text": text} if text is not None else {}),
            **(extra or {}),
        }
        self.chats.heard(where, message)
        await self._push(message=message)

    async def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        live_period: int | None = None,
        **how: Any,
    ) -> int:
        """A location from the user's attachment menu: one-time, or live for `live_period`
        seconds (then `move` it). Its message id."""
        place: Params = {"latitude": latitude, "longitude": longitude}
        if live_period is not None:
            place["live_period"] = live_period
        message_id = next(self._ids)
        await self.send(user_id, None, extra={"location": place, "message_id": message_id}, **how)
        if live_period is not None:
            self._live[(user_id, message_id)] = (int(time.time()), live_period)
        return message_id

    def shared_before(self, user_id: int, live_period: int) -> int:
        """A live location the user began sharing before the bot started (its message is not
        sent again); its message id, for `move`."""
        message_id = next(self._ids)
        self._live[(user_id, message_id)] = (int(time.time()), live_period)
        return message_id

    async def move(
        self,
        user_id: int,
        message_id: int,
        latitude: float,
        longitude: float,
        *,
        stop: bool = False,
    ) -> None:
        """A live location the user shares moved: Telegram sends its message, edited. Once
        stopped (`stop`, or its period over) the edit has no `live_period`."""
        sent_at, period = self._live[(user_id, message_id)]
        place: Params = {"latitude": latitude, "longitude": longitude}
        if not stop and time.time() < sent_at + period:
            place["live_period"] = period
        message = {
            "message_id": message_id,
            "date": sent_at,
            "edit_date": int(time.time()),
            "chat": {"id": user_id, "type": "private"},
            "from": _person(user_id, "Ann", "en"),
            "location": place,
        }
        self.chats.moved(user_id, message_id, None if stop else (latitude, longitude))
        await self._push(edited_message=message)

    async def tap(
        self,
        user_id: int,
        message: Call | Params,
        data: str,
        *,
        language: str = "en",
        name: str = "Someone",
    ) -> None:
        """The user taps an inline button of `message` (a call that sent it, or as shown)."""
        query_id = str(next(self._ids))
        self._tapped[query_id] = user_id
        await self._push(
            callback_query={
                "id": query_id,
                "from": _person(user_id, name, language),
                "chat_instance": "fake",
                "message": message.result if isinstance(message, Call) else message,
                "data": data,
            }
        )

    def shown(self, chat_id: int, message_id: int) -> Params | None:
        """A message the bot sent to a person of `chats`, as it now stands in their chat."""
        message = self.chats.find(chat_id, message_id)
        return message.shown if message is not None and message.shown else None

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
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await fake.deliveries.close()
        await runner.cleanup()
