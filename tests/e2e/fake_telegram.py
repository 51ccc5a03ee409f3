"""The project's own fake Telegram Bot API server: real HTTP, the bot cannot tell the difference.

It serves getUpdates from a queue the test fills, answers every other method like Telegram,
and records each call so the test can wait for what the bot did.
"""

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 4242
Params = dict[str, Any]


@dataclass
class Call:
    method: str
    params: Params
    result: Any

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
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await self._params(request)
        if method == "getUpdates":
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        if method == "getMe" and self.fail_get_me > 0:
            self.fail_get_me -= 1
            return web.json_response(
                {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502
            )
        result = self._result(method, params)
        call = Call(method, params, result)
        if delay := self.slow.get(call.chat_id):
            await self._record(self.arrived, call)
            await asyncio.sleep(delay)
            if request.transport is None or request.transport.is_closing():
                self.abandoned.append(call)
        await self._record(self.calls, call)
        return web.json_response({"ok": True, "result": result})

    async def _record(self, calls: list[Call], call: Call) -> None:
        async with self._changed:
            calls.append(call)
            self._changed.notify_all()

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
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        async with self._changed:
            while True:
                fresh = [u for u in self.updates if u["update_id"] >= offset]
                remaining = deadline - time.monotonic()
                if fresh or remaining <= 0:
                    return fresh
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    def _result(self, method: str, params: Params) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Dispatch",
                "username": "dispatch_bot",
            }
        if method in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
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

    # What a test does.

    async def _push(self, **update: Any) -> None:
        async with self._changed:
            self.updates.append({"update_id": len(self.updates) + 1, **update})
            self._changed.notify_all()

    async def send(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        language: str = "en",
        name: str = "Ann",
    ) -> None:
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
