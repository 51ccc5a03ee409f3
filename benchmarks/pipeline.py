"""The whole pipeline in one process, against aiogram alone. Prints cycles a second.

One cycle: a dispatcher's `/order` is stored in the inbox and handled from there by the real
Dispatcher and routers, as the bot takes every update; the outbox rows it wrote are delivered
(the courier's offer, with its Complete button, and the answer to the dispatcher); the
courier's Complete tap goes the same way, and the rows that wrote are delivered. Telegram is
a session that answers at once; the database is a SQLite file in WAL mode. In the same run,
aiogram alone dispatches as many updates to handlers that do nothing. Run with
`.venv/bin/python -m benchmarks.pipeline [cycles] [--profile [tottime]]`.
"""

import asyncio
import cProfile
import itertools
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiogram import Dispatcher, Router
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from benchmarks.common import (
    ADMIN,
    DISPATCHER,
    TOKEN,
    InstantSession,
    SqlCounter,
    business,
)
from bot.app import build_bot, build_dispatcher
from bot.settings import Settings
from bot.telegram.inbox import InboxSettings, InboxWorker, incoming
from bot.telegram.limits import FloodLimiter
from bot.telegram.sender import OutboxSender, SenderSettings
from db.uow import UnitOfWorkFactory
from handlers.callbacks import CompleteOrder
from handlers.i18n import PoI18n

COURIERS = 100
WARM_UP = 20
STEPS = ("/order", "its deliveries", "Complete tap", "its deliveries")


class Tally:
    """Seconds, statements and transactions of each step, summed over the cycles."""

    def __init__(self) -> None:
        self.rows = [[0.0, 0, 0] for _ in STEPS]

    def add(self, step: int, seconds: float, statements: int, transactions: int) -> None:
        row = self.rows[step]
        row[0] += seconds
        row[1] += statements
        row[2] += transactions

    def lines(self, cycles: int) -> list[str]:
        return [
            f"    {name:15} {seconds * 1000 / cycles:6.2f} ms {statements / cycles:5.1f}"
            f" statements {transactions / cycles:4.1f} transactions"
            for name, (seconds, statements, transactions) in zip(STEPS, self.rows, strict=True)
        ]


class Updates:
    """Real Updates, as Telegram sends them."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def order(self, n: int) -> Update:
        user = User(id=DISPATCHER, is_bot=False, first_name="Dee", language_code="en")
        message = Message(
            message_id=n,
            date=datetime.now(UTC),
            chat=Chat(id=DISPATCHER, type="private"),
            from_user=user,
            text=f"/order North parcel {n}",
        )
        return Update(update_id=next(self._ids), message=message)

    def complete(self, courier: int, order_id: int, offer_id: int) -> Update:
        user = User(id=courier, is_bot=False, first_name="Cy", language_code="en")
        message = Message(
            message_id=offer_id, date=datetime.now(UTC), chat=Chat(id=courier, type="private")
        )
        query = CallbackQuery(
            id=str(next(self._ids)),
            from_user=user,
            chat_instance="ci",
            message=message,
            data=CompleteOrder(order_id=order_id).pack(),
        )
        return Update(update_id=next(self._ids), callback_query=query)


class Pipeline:
    def __init__(self, database: Path) -> None:
        self.database = database
        self.session = InstantSession()
        self.updates = Updates()

    async def start(self) -> None:
        url = f"sqlite+aiosqlite:///{self.database}"
        self.engine = await business(url, COURIERS)
        self.sql = SqlCounter().attach(self.engine)
        uow_factory = UnitOfWorkFactory(self.engine)
        settings = Settings(_env_file=None, bot_token=TOKEN, admin_ids=str(ADMIN))
        self.bot = build_bot(settings, self.session)
        self.dispatcher = build_dispatcher(settings, uow_factory, PoI18n("en"))
        self.inbox = InboxWorker(self.dispatcher, self.bot, uow_factory, InboxSettings())
        self.sender = OutboxSender(
            self.bot,
            uow_factory,
            PoI18n("en"),
            FloodLimiter(1_000_000),
            SenderSettings(poll_seconds=1, lease=timedelta(seconds=60)),
        )

    def steps(self, n: int) -> list[Callable[[], Awaitable[object]]]:
        """Cycle n, step by step (see STEPS)."""
        return [
            lambda: self._take(self.updates.order(n)),
            self.sender.deliver_due,
            lambda: self._take(self._complete(n)),
            self.sender.deliver_due,
        ]

    async def _take(self, update: Update) -> None:
        """As the webhook or the polling does: store the update, then handle it."""
        await self.inbox.store([incoming(update)])
        await self.inbox.handle_due()

    def _complete(self, n: int) -> Update:
        courier, message_id = self.session.offers.pop(n)  # KeyError: order n was not offered
        return self.updates.complete(courier, n, message_id)

    async def cycle(self, n: int, tally: "Tally | None" = None) -> None:
        for index, step in enumerate(self.steps(n)):
            started, statements, transactions = (
                time.perf_counter(),
                self.sql.statements,
                self.sql.transactions,
            )
            await step()
            if tally:
                tally.add(
                    index,
                    time.perf_counter() - started,
                    self.sql.statements - statements,
                    self.sql.transactions - transactions,
                )

    async def stop(self) -> None:
        await self.engine.dispose()


async def bare_aiogram(updates: int) -> float:
    """Updates a second that aiogram alone dispatches to handlers that do nothing."""
    dispatcher = Dispatcher()
    router = Router()

    @router.message()
    async def on_message(message: Message) -> None:
        pass

    @router.callback_query()
    async def on_tap(query: CallbackQuery) -> None:
        pass

    dispatcher.include_router(router)
    bot = build_bot(Settings(_env_file=None, bot_token=TOKEN), InstantSession())
    make = Updates()
    feed = [make.order(n) if n % 2 else make.complete(7, n + 1, n) for n in range(updates)]
    started = time.perf_counter()
    for update in feed:
        await dispatcher.feed_update(bot, update)
    return updates / (time.perf_counter() - started)


async def measure(cycles: int, profile: bool) -> tuple[dict[str, float], Tally]:
    tally = Tally()
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline(Path(folder) / "pipeline.sqlite3")
        await pipeline.start()
        for n in range(1, WARM_UP + 1):
            await pipeline.cycle(n)
        pipeline.sql.reset()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        for n in range(WARM_UP + 1, WARM_UP + cycles + 1):
            await pipeline.cycle(n, tally)
        took = time.perf_counter() - started
        if profiler:
            profiler.disable()
            order = "tottime" if "tottime" in sys.argv else "cumulative"
            pstats.Stats(profiler).sort_stats(order).print_stats(40)
        await pipeline.stop()
    bare = await bare_aiogram(2 * cycles)
    rate = cycles / took
    return {
        "cycles_per_s": rate,
        "statements": pipeline.sql.statements / cycles,
        "transactions": pipeline.sql.transactions / cycles,
        "bare_updates_per_s": bare,
        "bare_cycles_per_s": bare / 2,
        "ratio": (bare / 2) / rate,
    }, tally


def main() -> None:
    cycles = int(next((a for a in sys.argv[1:] if a.isdigit()), "1000"))
    result, tally = asyncio.run(measure(cycles, "--profile" in sys.argv))
    print(f"pipeline, SQLite file (WAL), {COURIERS} couriers, {cycles} cycles:")
    print(f"  {result['cycles_per_s']:,.0f} cycles/s ({1000 / result['cycles_per_s']:.2f} ms)")
    print(
        f"  {result['statements']:.1f} SQL statements and {result['transactions']:.1f}"
        " transactions per cycle (BEGINs counted as statements, COMMITs not):"
    )
    print("\n".join(tally.lines(cycles)))
    print(
        f"  aiogram alone: {result['bare_updates_per_s']:,.0f} updates/s"
        f" = {result['bare_cycles_per_s']:,.0f} cycles/s (two updates each);"
        f" the pipeline is {result['ratio']:.1f}x slower"
    )


if __name__ == "__main__":
    main()
