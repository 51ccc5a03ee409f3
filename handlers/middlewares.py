"""Per-update plumbing: a unit of work for the handler, and log context."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from db.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


class UnitOfWorkMiddleware(BaseMiddleware):
    """Hands each update a unit of work, as `uow`, with no transaction open.

    The services open and end their own short transactions, so a handler answers the user
    only after the data is committed and never while it holds a lock. An update from the
    inbox comes with its `stamp`, which the first transaction to commit writes (bot.telegram.inbox).
    """

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["uow"] = self.uow_factory(data.get("stamp"))
        return await handler(event, data)


class UpdateLogMiddleware(BaseMiddleware):
    """One line per update with its id, the user and the chat."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        user = data.get("event_from_user")
        chat = data.get("event_chat")
        log.info(
            "update %s: %s from user %s in chat %s",
            event.update_id,
            event.event_type,
            user.id if user else None,
            chat.id if chat else None,
        )
        return await handler(event, data)
