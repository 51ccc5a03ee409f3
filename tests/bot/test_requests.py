"""The request middlewares on the Bot's session: replies ride out a hiccup, edits that change
nothing are fine, and every message waits for its flood slot."""

import asyncio
from typing import Any

import aiohttp_socks
import pytest
import python_socks
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, GetUpdates, SendMessage

from bot.telegram.requests import (
    RetryBriefly,
    TolerateUnchangedEdits,
    TransportFailuresAreNetworkErrors,
)

REPLY = SendMessage(chat_id=7, text="hi")


class Telegram:
    """Answers with each of `answers` in turn: an exception is raised, anything else returned."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, _bot: Any, _method: Any) -> Any:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_a_reply_rides_out_a_server_error():
    telegram = Telegram(TelegramServerError(REPLY, "Bad Gateway"), "sent")
    assert await RetryBriefly()(telegram, None, REPLY) == "sent"  # type: ignore[arg-type]
    assert telegram.calls == 2


async def test_a_reply_waits_out_a_short_flood_limit():
    telegram = Telegram(TelegramRetryAfter(REPLY, "Too Many Requests", retry_after=1), "sent")
    assert await RetryBriefly()(telegram, None, REPLY) == "sent"  # type: ignore[arg-type]


async def test_a_wait_past_the_budget_is_not_waited():
    flood = TelegramRetryAfter(REPLY, "Too Many Requests", retry_after=30)
    telegram = Telegram(flood, "sent")
    with pytest.raises(TelegramRetryAfter):
        await RetryBriefly(budget_seconds=5)(telegram, None, REPLY)  # type: ignore[arg-type]
    assert telegram.calls == 1


async def test_polling_is_left_to_its_own_backoff():
    telegram = Telegram(TelegramServerError(GetUpdates(), "Bad Gateway"))
    with pytest.raises(TelegramServerError):
        await RetryBriefly()(telegram, None, GetUpdates())  # type: ignore[arg-type]
    assert telegram.calls == 1


async def test_an_edit_that_changes_nothing_is_fine_and_other_refusals_are_not():
    edit = EditMessageText(chat_id=7, message_id=1, text="same")
    unchanged = TelegramBadRequest(edit, "Bad Request: message is not modified: specified new")
    assert await TolerateUnchangedEdits()(Telegram(unchanged), None, edit) is True  # type: ignore[arg-type]
    with pytest.raises(TelegramBadRequest):
        await TolerateUnchangedEdits()(  # type: ignore[arg-type]
            Telegram(TelegramBadRequest(edit, "Bad Request: can't parse entities")), None, edit
        )


@pytest.mark.parametrize(
    "failure",
    [
        python_socks.ProxyConnectionError("Couldn't connect to proxy 127.0.0.1:9"),
        aiohttp_socks.ProxyError("Invalid proxy response"),
        asyncio.IncompleteReadError(b"", 2),  # a SOCKS proxy that hung up mid-greeting
        ClientDecodeError("Failed to decode object", ValueError("no JSON"), "<html>502</html>"),
    ],
)
async def test_a_proxy_or_an_error_page_fails_a_call_as_the_network_would(failure: Exception):
    """So that the start, the polling and the replies retry it, as they retry the network."""
    with pytest.raises(TelegramNetworkError):
        await TransportFailuresAreNetworkErrors()(Telegram(failure), None, REPLY)  # type: ignore[arg-type]
