"""Each private chat as its person sees it in Telegram: the messages both ways, as edited,
the reply keyboard on show, and the command menu. What the playground's page shows."""

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from typing import Any

Params = dict[str, Any]
KEEP = 200  # messages a chat keeps; older ones scroll away


@dataclass
class Person:
    id: int
    name: str
    role: str  # what the playground seeded them as: admin, dispatcher, courier or newcomer
    language: str = "en"


@dataclass
class Message:
    id: int
    sender: str  # "bot", "user", or "popup" (a callback answer Telegram shows briefly)
    text: str  # the bot's is Telegram HTML; a person's is plain
    buttons: list[list[dict[str, str]]] = field(default_factory=list)  # {"text", "data"|"url"}
    location: tuple[float, float] | None = None
    edited: bool = False
    shown: Params = field(default_factory=dict)  # the bot's: the Message as Telegram has it

    def public(self) -> dict[str, Any]:
        """What the page gets."""
        return {k: v for k, v in asdict(self).items() if k != "shown"}


@dataclass
class Chat:
    person: Person
    messages: list[Message] = field(default_factory=list)
    keyboard: list[list[dict[str, Any]]] = field(default_factory=list)  # the reply keyboard


class ChatLog:
    """What happened in each person's chat, and a version that grows with every change."""

    def __init__(self) -> None:
        self.chats: dict[int, Chat] = {}
        self.menus: dict[tuple[int | None, str | None], list[dict[str, str]]] = {}
        self.version = 0
        self.closed = False  # the bot stops: nobody waits for changes any more
        self._changed = asyncio.Event()  # set, and replaced, on every change

    def add(self, person: Person) -> None:
        self.chats.setdefault(person.id, Chat(person))
        self._bump()

    def heard(self, chat_id: int, message: Params) -> None:
        """A message the person sent to the bot."""
        if chat := self.chats.get(chat_id):
            place = message.get("location")
            where = (place["latitude"], place["longitude"]) if place else None
            text = message.get("text", "")
            chat.messages.append(Message(message["message_id"], "user", text, location=where))
            self._trim(chat)
            self._bump()

    def sent(self, method: str, params: Params, result: Any) -> None:
        """A Bot API call the bot made, as it changes what people see."""
        chat = self.chats.get(_int(params.get("chat_id")))
        if method == "setMyCommands":
            self._menu(params)
        elif chat is None:
            return
        elif method == "sendMessage":
            self._keep_keyboard(chat, params.get("reply_markup"))
            chat.messages.append(Message(result["message_id"], "bot", params.get("text", "")))
            chat.messages[-1].buttons = _inline(params.get("reply_markup"))
            chat.messages[-1].shown = result
            self._trim(chat)
        elif method == "sendVenue":
            place = (float(params["latitude"]), float(params["longitude"]))
            text = f"📍 {params.get('title', '')}\n{params.get('address', '')}"
            chat.messages.append(Message(result["message_id"], "bot", text, location=place))
            self._trim(chat)
        elif method in ("editMessageText", "editMessageReplyMarkup"):
            self._edit(chat, params, result)
        elif method == "deleteMessage":
            chat.messages = [m for m in chat.messages if m.id != _int(params.get("message_id"))]
        self._bump()

    def moved(self, chat_id: int, message_id: int, where: tuple[float, float] | None) -> None:
        """The person's live location moved (or stopped: None keeps where it last was)."""
        message = self.find(chat_id, message_id)
        if message is not None and message.sender == "user":
            message.location = where or message.location
            message.edited = True
            self._bump()

    def popup(self, chat_id: int, text: str) -> None:
        if (chat := self.chats.get(chat_id)) and text:
            chat.messages.append(Message(0, "popup", text))
            self._trim(chat)
            self._bump()

    def find(self, chat_id: int, message_id: int) -> Message | None:
        chat = self.chats.get(chat_id)
        return next((m for m in chat.messages if m.id == message_id), None) if chat else None

    def state(self) -> dict[str, Any]:
        """Everything the page shows, as JSON."""
        return {
            "version": self.version,
            "chats": [
                {
                    "person": asdict(chat.person),
                    "messages": [message.public() for message in chat.messages],
                    "keyboard": chat.keyboard,
                    "menu": self._menu_of(chat.person),
                }
                for chat in self.chats.values()
            ],
        }

    async def changed_since(self, version: int, within: float) -> None:
        """Return once the version is past `version`, or after `within` seconds."""
        if self.version <= version and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), within)

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    def _edit(self, chat: Chat, params: Params, result: Any) -> None:
        message = self.find(chat.person.id, _int(params.get("message_id")))
        if message is None:
            return
        if "text" in params:
            message.text = params["text"]
        message.buttons = _inline(params.get("reply_markup"))
        message.edited = True
        if isinstance(result, dict):
            message.shown = result | {"text": message.text}

    @staticmethod
    def _keep_keyboard(chat: Chat, markup: Any) -> None:
        if isinstance(markup, dict) and "keyboard" in markup:
            chat.keyboard = markup["keyboard"]
        elif isinstance(markup, dict) and markup.get("remove_keyboard"):
            chat.keyboard = []

    def _menu(self, params: Params) -> None:
        scope = params.get("scope") or {"type": "default"}
        chat_id = _int(scope.get("chat_id")) if scope.get("type") == "chat" else None
        if scope.get("type") not in ("chat", "default"):
            return
        commands = [
            {"command": c["command"], "description": c["description"]}
            for c in params.get("commands", [])
        ]
        self.menus[(chat_id, params.get("language_code") or None)] = commands

    def _menu_of(self, person: Person) -> list[dict[str, str]]:
        """Telegram's rule: the narrowest scope first, the person's language before none."""
        for scope in (person.id, None):
            for language in (person.language, None):
                if (scope, language) in self.menus:
                    return self.menus[(scope, language)]
        return []

    @staticmethod
    def _trim(chat: Chat) -> None:
        del chat.messages[:-KEEP]

    def _bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()


def _inline(markup: Any) -> list[list[dict[str, str]]]:
    if not isinstance(markup, dict):
        return []
    return [
        [
            {"text": b["text"], **({"url": b["url"]} if "url" in b else {})}
            | ({"data": b["callback_data"]} if "callback_data" in b else {})
            for b in row
        ]
        for row in markup.get("inline_keyboard", [])
    ]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
