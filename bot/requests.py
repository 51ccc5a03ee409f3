"""Middlewares on the Bot's HTTP session: what every call to Telegram gets, wherever it is made."""

from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

NOT_MODIFIED = "message is not modified"


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
