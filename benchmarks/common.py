"""What the benchmarks share: a Bot session that answers at once, a business in a database,
and counters of SQL statements and transactions."""

import itertools
import math
import statistics
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import EditMessageText, GetMe, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, User
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.migrate import upgrade
from db.uow import UnitOfWorkFactory
from handlers.callbacks import CompleteOrder
from services import couriers, districts, staff

TOKEN = "123456:benchmark-token-not-a-real-one"
BOT_USER = User(id=4242, is_bot=True, first_name="Dispatch", username="dispatch_bot")
ADMIN = 1
DISPATCHER = 2
FIRST_COURIER = 100_000
BATCH = 5_000  # rows a bulk insert sends at once


class InstantSession(BaseSession):
    """Answers every Bot API call at once, as Telegram would, without a network."""

    def __init__(self) -> None:
        super().__init__()
        self.offers: dict[int, tuple[int, int]] = {}  # order -> (chat, message) offering it
        self._ids = itertools.count(1000)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109  # aiogram's signature
    ) -> TelegramType:
        if isinstance(method, GetMe):
            return BOT_USER  # type: ignore[return-value]
        if isinstance(method, SendMessage | EditMessageText):
            message = Message(
                message_id=getattr(method, "message_id", None) or next(self._ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id or 0), type="private"),
                text=method.text,
            )
            if (order_id := _order_offered(method)) is not None:
                self.offers[order_id] = (message.chat.id, message.message_id)
            return message  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError
        yield b""


def _order_offered(method: SendMessage | EditMessageText) -> int | None:
    """The order whose Complete button the message carries, if any."""
    rows = getattr(method.reply_markup, "inline_keyboard", None) or []
    for button in (button for row in rows for button in row):
        if str(button.callback_data).startswith("done:"):
            return CompleteOrder.unpack(str(button.callback_data)).order_id
    return None


@dataclass
class SqlCounter:
    """Statements and transactions an engine ran, from when it was attached."""

    statements: int = 0
    transactions: int = 0

    def attach(self, engine: AsyncEngine) -> "SqlCounter":
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def statement(*_: object) -> None:
            self.statements += 1

        @event.listens_for(sync, "begin")
        def begin(*_: object) -> None:
            self.transactions += 1

        return self

    def reset(self) -> None:
        self.statements = self.transactions = 0


async def business(url: str, couriers_count: int, district: str = "North") -> AsyncEngine:
    """A migrated database with an admin, a dispatcher, one district and that many active,
    online, free couriers (Telegram ids from FIRST_COURIER); its engine."""
    await upgrade(url)
    engine = create_engine(url)
    factory = UnitOfWorkFactory(engine)
    await staff.sync_admins(factory(), [ADMIN])
    await staff.grant_dispatcher(factory(), ADMIN, DISPATCHER)
    north = await districts.add_district(factory(), ADMIN, district)
    for n in range(couriers_count):
        await couriers.register_courier(
            factory(), FIRST_COURIER + n, f"C{n}", [north.id], approval_required=False
        )
    return engine


async def reset_postgres(url: str) -> None:
    """An empty scratch database: everything in it is dropped."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def summary_ms(samples: list[float]) -> str:
    """p50 and p99 (nearest rank) of samples in seconds, in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def insert_in_batches(run: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Many rows, a few thousand to a statement (`run`: a session's or connection's execute)."""
    for start in range(0, len(rows), BATCH):
        await run(insert(table), rows[start : start + BATCH])
