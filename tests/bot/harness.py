"""The real Dispatcher and routers, fed real Updates, through a session that records requests."""

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramServerError
from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    SendVenue,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineKeyboardMarkup,
    Location,
    Message,
    Update,
    User,
    Venue,
)

from bot.telegram.limits import FloodLimiter
from bot.telegram.sender import OutboxSender, SenderSettings
from db.uow import UnitOfWorkFactory
from handlers.i18n import PoI18n

BOT_USER = User(id=4242, is_bot=True, first_name="Dispatch", username="dispatch_bot")


class RecordingSession(BaseSession):
    """Answers every Bot API call like Telegram would, and remembers it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.results: dict[int, Any] = {}  # id() of a request -> what Telegram answered
        self.blocked: set[int] = set()
        self.outages = 0  # this many calls fail as if Telegram were down
        # Calls to these chats wait until the event is set: Telegram being slow for them.
        self.held: dict[int, asyncio.Event] = {}
        self.holding = asyncio.Event()  # set once a call waits on `held`
        # Calls to these chats fail with this error, as after a flood limit or an outage.
        self.failing: dict[int, Exception] = {}
        # Or calls fail when this says so (the error), whatever their chat.
        self.refuse: Callable[[TelegramMethod[Any]], Exception | None] = lambda method: None
        self._texts: dict[tuple[int, int], str] = {}  # what each message shows now
        self._message_ids = itertools.count(1000)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109  # aiogram's signature
    ) -> TelegramType:
        chat_id = getattr(method, "chat_id", None)
        if chat_id in self.held:
            self.holding.set()
            await self.held[chat_id].wait()
        self.requests.append(method)
        if self.outages:
            self.outages -= 1
            raise TelegramServerError(method, "Bad Gateway")
        if chat_id in self.blocked:
            raise TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")
        if chat_id in self.failing:
            raise self.failing[chat_id]
        if refusal := self.refuse(method):
            raise refusal
        self._refuse_unchanged_edit(method)
        result: Any = True
        if isinstance(method, GetMe):
            result = BOT_USER
        elif isinstance(method, SendMessage | EditMessageText):
            result = Message(
                message_id=getattr(method, "message_id", None) or next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(chat_id or 0), type="private"),
                text=method.text,
                reply_markup=method.reply_markup
                if isinstance(method.reply_markup, InlineKeyboardMarkup)
                else None,
            )
        elif isinstance(method, SendVenue):
            place = Location(latitude=method.latitude, longitude=method.longitude)
            result = Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(chat_id or 0), type="private"),
                venue=Venue(location=place, title=method.title, address=method.address),
                location=place,
            )
        if isinstance(result, Message):
            self._texts[(result.chat.id, result.message_id)] = result.text or ""
        self.results[id(method)] = result
        return result  # type: ignore[no-any-return]

    def _refuse_unchanged_edit(self, method: TelegramMethod[Any]) -> None:
        """Telegram's 400 for an edit that changes nothing (markup is not compared here)."""
        if not isinstance(method, EditMessageText | EditMessageReplyMarkup):
            return
        key = (int(method.chat_id or 0), int(method.message_id or 0))
        if isinstance(method, EditMessageText) and self._texts.get(key) == method.text:
            raise TelegramBadRequest(
                method, "Bad Request: message is not modified: specified new message content"
            )

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError
        yield b""


class Harness:
    """Talks to the bot as users would and tells what it answered."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, uow_factory: UnitOfWorkFactory) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.session: RecordingSession = bot.session  # type: ignore[assignment]
        self.uow_factory = uow_factory
        self.sender = OutboxSender(
            bot,
            uow_factory,
            PoI18n("en"),
            FloodLimiter(1000),
            SenderSettings(poll_seconds=0.01, lease=timedelta(seconds=60)),
        )
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def user(self, user_id: int, language: str = "en", name: str = "Ann") -> User:
        return User(id=user_id, is_bot=False, first_name=name, language_code=language)

    async def _feed(self, update: Update) -> list[TelegramMethod[Any]]:
        before = len(self.session.requests)
        await self.dispatcher.feed_update(self.bot, update)
        return self.session.requests[before:]

    async def send(
        self,
        user_id: int,
        text: str | None,
        *,
        chat_id: int | None = None,
        language: str = "en",
        name: str = "Ann",
        **content: Any,
    ) -> list[TelegramMethod[Any]]:
        """A message from the user: a text, or what `content` holds (a location, a venue)."""
        chat = Chat(id=chat_id or user_id, type="private" if chat_id is None else "supergroup")
        message = Message(
            message_id=next(self._message_ids),
            date=datetime.now(UTC),
            chat=chat,
            from_user=self.user(user_id, language, name),
            text=text,
            **content,
        )
        return await self._feed(Update(update_id=next(self._update_ids), message=message))

    async def say(self, user_id: int, text: str, **options: Any) -> list[TelegramMethod[Any]]:
        """`send`, then what the outbox sends now: what the chat sees after a command whose
        answer comes from the outbox (posting an order)."""
        return await self.send(user_id, text, **options) + await self.deliver()

    async def tap(
        self,
        user_id: int,
        data: str,
        message: Message | None = None,
        *,
        language: str = "en",
        chat_id: int | None = None,
    ) -> list[TelegramMethod[Any]]:
        callback = CallbackQuery(
            id=str(next(self._update_ids)),
            from_user=self.user(user_id, language),
            chat_instance="ci",
            data=data,
            message=message
            or Message(
                message_id=next(self._message_ids),
                date=datetime.now(UTC),
                chat=Chat(
                    id=chat_id or user_id, type="private" if chat_id is None else "supergroup"
                ),
                text="…",
            ),
        )
        return await self._feed(Update(update_id=next(self._update_ids), callback_query=callback))

    async def deliver(self) -> list[TelegramMethod[Any]]:
        """Send what the outbox holds now, as the bot does in the background."""
        before = len(self.session.requests)
        await self.sender.deliver_due()
        return self.session.requests[before:]


def texts(requests: list[TelegramMethod[Any]], chat_id: int | None = None) -> list[str]:
    """What was sent or edited, optionally in one chat only."""
    return [
        r.text
        for r in requests
        if isinstance(r, SendMessage | EditMessageText)
        and (chat_id is None or r.chat_id == chat_id)
    ]


def message_of(session: RecordingSession, request: SendMessage) -> tuple[int, int]:
    """(chat id, message id) of the message a SendMessage became."""
    result = session.results[id(request)]
    return result.chat.id, result.message_id


def buttons(request: TelegramMethod[Any]) -> list[tuple[str, str]]:
    markup = getattr(request, "reply_markup", None)
    if not isinstance(markup, InlineKeyboardMarkup):
        return []
    return [(b.text, b.callback_data or "") for row in markup.inline_keyboard for b in row]


def sent_message(request: SendMessage, result_id: int) -> Message:
    """The message a SendMessage became, as a later callback would carry it."""
    return Message(
        message_id=result_id,
        date=datetime.now(UTC),
        chat=Chat(id=int(request.chat_id), type="private"),
        text=request.text,
        reply_markup=request.reply_markup
        if isinstance(request.reply_markup, InlineKeyboardMarkup)
        else None,
    )
