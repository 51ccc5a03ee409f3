"""Middlewares on the Bot's HTTP session: what every call to Telegram gets, wherever it is made."""

import asyncio
import logging
import random
import time
from typing import Any, cast

import aiohttp_socks
import python_socks
from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

from bot.telegram.lanes import UNDER_LEASE, LeaseLost
from bot.telegram.limits import FloodLimiter

log = logging.getLogger(__name__)
NOT_MODIFIED = "message is not modified"
# Methods that put a message in a chat, and so count against Telegram's flood limits.
_SENDING = ("send", "edit", "copy", "forward")
PROXY_ERRORS = (
    *(
        getattr(module, name)
        for module in (python_socks, aiohttp_socks)  # each has its own three
        for name in ("ProxyError", "ProxyConnectionError", "ProxyTimeoutError")
    ),
    asyncio.IncompleteReadError,  # a SOCKS proxy that hangs up halfway through its greeting
)


class KeepResponseModels(BaseRequestMiddleware):
    """Holds on to the answer's model of each kind of call, so that it is built once.

    aiogram reads every answer with `Response[<what the method returns>]`, and pydantic keeps
    such a class only while something refers to it: otherwise each call builds it anew, a
    millisecond or more of CPU (a sixth of the bot's time while couriers stream live
    locations, by py-spy). This middleware is that something."""

    def __init__(self) -> None:
        self._kept: dict[Any, Any] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._kept:
            self._kept[returning] = Response[returning]  # type: ignore[valid-type]
        return await make_request(bot, method)


class TolerateUnchangedEdits(BaseRequestMiddleware):
    """Editing a message into what it already shows is no error: a double tap, a page turned
    to itself, a verdict shown twice. Telegram answers 400 "message is not modified"."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as error:
            if NOT_MODIFIED not in error.message:
                raise
            unchanged: Any = True  # what Telegram returns for an edit it need not make
            return cast(Response[TelegramType], unchanged)


class TransportFailuresAreNetworkErrors(BaseRequestMiddleware):
    """A proxy (TELEGRAM_PROXY) that cannot be reached or hangs up, and an answer that is not
    Telegram's JSON (a proxy's or a load balancer's error page), fail a call as a network
    error does, and are retried as one: aiogram lets these through raw."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except PROXY_ERRORS as error:
            raise TelegramNetworkError(method, f"the proxy failed: {error!r}") from error
        except ClientDecodeError as error:
            raise TelegramNetworkError(
                method, f"the answer was not Telegram's: {str(error)[:200]}"
            ) from error


class KeepToFloodLimits(BaseRequestMiddleware):
    """Every message sent or edited waits for its slot (bot.telegram.limits); in a sender's lane, it
    then goes only if the lane's lease still outlasts it (bot.telegram.lanes.UNDER_LEASE)."""

    def __init__(self, limiter: FloodLimiter) -> None:
        self.limiter = limiter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int) and method.__api_method__.startswith(_SENDING):
            await self.limiter.acquire(chat_id)
            if (under_lease := UNDER_LEASE.get()) is not None and not under_lease():
                raise LeaseLost
        return await make_request(bot, method)


class RetryBriefly(BaseRequestMiddleware):
    """A handler's answer rides out a flood wait or a hiccup of Telegram's, for a few seconds.

    Past that the error goes up: the user's action is already saved, the failure is logged.
    The outbox sender has no use for this; it schedules its own retries.
    """

    def __init__(self, budget_seconds: float = 5.0) -> None:
        self.budget_seconds = budget_seconds

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ in ("getUpdates", "getMe"):
            # Polling has a backoff of its own, and so has the start (bot.startup).
            return await make_request(bot, method)
        deadline = time.monotonic() + self.budget_seconds
        delay = 0.5
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                wait = float(error.retry_after)
                error_seen: Exception = error
            except (TelegramServerError, TelegramNetworkError) as error:
                wait, delay = delay * random.uniform(0.8, 1.2), delay * 2
                error_seen = error
            if time.monotonic() + wait > deadline:
                raise error_seen
            log.info("%s: %s; trying again in %.1f s", method.__api_method__, error_seen, wait)
            await asyncio.sleep(wait)
