"""The unit of work: a use case's access to the database, one short transaction at a time."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import is_locked, session_factory
from db.repositories.couriers import CourierRepository
from db.repositories.districts import DistrictRepository
from db.repositories.idempotency import IdempotencyRepository
from db.repositories.inbox import InboxRepository
from db.repositories.invites import InviteRepository
from db.repositories.offers import Decided, OfferRepository
from db.repositories.orders import OrderRepository
from db.repositories.outbox import OutboxRepository
from db.repositories.positions import PositionRepository
from db.repositories.reports import DailyReportRepository
from db.repositories.shops import ShopRepository
from db.repositories.staff import StaffRepository
from db.repositories.webhooks import WebhookRepository

# Namespace of the PostgreSQL advisory locks that serialize dispatching per district.
DISPATCH_LOCK_NAMESPACE = 0x44535054
# How long a SQLite writer waits for another process's write lock before it gives up.
SQLITE_LOCK_WAIT_SECONDS = 30.0
_LOCK_POLL_SECONDS = (0.001, 0.05)  # the first and the longest pause between tries


@dataclass(frozen=True, slots=True)
class DispatchRules:
    """The business's dispatch settings, carried by every unit of work so that each use case
    that gives out orders (posting, completing, a shift starting, a sweep...) follows them."""

    offer_seconds: float = 0  # 0: orders are assigned outright, without an offer
    misses_to_offline: int = 2  # offers let run out in a row that end a courier's shift
    nearest: bool = True  # DISPATCH_RULE=nearest; False: longest_free, locations unused
    location_fresh_seconds: float = 600  # how long a position counts without a new one


class AlreadyDone(Exception):
    """The request a unit of work serves had its effect already, elsewhere: its stamp was
    taken. Nothing of this transaction was committed."""


class DatabaseLocked(Exception):
    """Another process held SQLite's write lock for longer than the writer could wait."""


class Stamp:
    """The mark a request from outside (a Telegram update, a shop's keyed request) leaves in
    the first transaction that commits its effects: the same request again finds it there.

    `mark` writes it in that transaction and says whether it could (False: another copy of the
    request got there first, and this transaction is rolled back with AlreadyDone).
    """

    def __init__(self, mark: Callable[["UnitOfWork"], Awaitable[bool]]) -> None:
        self._mark = mark
        self.stamped = False  # set once a transaction with the mark has committed

    async def write(self, uow: "UnitOfWork") -> None:
        if not self.stamped and not await self._mark(uow):
            raise AlreadyDone


class UnitOfWork:
    """Open a transaction with `async with uow.write():` or `async with uow.read():`.

    Inside the block the repositories are attributes of the unit of work. What is not
    committed when the block ends is rolled back. A write transaction holds SQLite's write
    lock, so nothing inside one may wait on Telegram or a client: commit, then answer.
    A unit of work serves one caller; it can open one transaction after another.
    """

    def __init__(self, factory: "UnitOfWorkFactory", stamp: Stamp | None = None) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None
        self.stamp = stamp

    def write(self) -> AbstractAsyncContextManager["UnitOfWork"]:
        """A transaction that may change data; it must end with `commit()` to keep it."""
        return self._transaction(writes=True)

    def read(self) -> AbstractAsyncContextManager["UnitOfWork"]:
        """A transaction that only reads: it never takes the write lock."""
        return self._transaction(writes=False)

    @asynccontextmanager
    async def _transaction(self, *, writes: bool) -> AsyncIterator["UnitOfWork"]:
        if self._session is not None:
            raise RuntimeError("a unit of work runs one transaction at a time")
        async with self._factory.turn(writes):
            self._session = session = await self._factory.begin(writes)
            self.inbox = InboxRepository(session)
            self.idempotency = IdempotencyRepository(session)
            self.districts = DistrictRepository(session)
            self.couriers = CourierRepository(session)
            self.orders = OrderRepository(session)
            self.offers = OfferRepository(session)
            self.positions = PositionRepository(session)
            self.staff = StaffRepository(session)
            self.invites = InviteRepository(session)
            self.outbox = OutboxRepository(session)
            self.reports = DailyReportRepository(session)
            self.shops = ShopRepository(session)
            self.webhooks = WebhookRepository(session)
            try:
                yield self
            finally:
                self._session = None
                try:
                    await session.rollback()
                finally:
                    await session.close()

    @property
    def rules(self) -> DispatchRules:
        return self._factory.rules

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside `async with uow.write()/read()`")
        return self._session

    async def commit(self) -> None:
        """Commit, with the orders' history, the notices (in chat order), the shops' webhook
        events and the request's stamp; then ring for the senders."""
        if self.stamp is not None:
            await self.stamp.write(self)
        await self.orders.write_history()
        notices = await self.outbox.write_added()
        changes, self.orders.shop_changes = self.orders.shop_changes, []
        events = await self.webhooks.write_events(changes)
        decided, self.offers.decided = self.offers.decided, []
        await self.session.commit()
        if self.stamp is not None:
            self.stamp.stamped = True
        if notices:
            self._factory.notices_committed()
        if events:
            self._factory.events_committed()
        if decided:
            self._factory.offers_decided(decided)

    async def lock_districts(
        self, district_ids: Iterable[int] = (), *, of_couriers: Iterable[int | None] = ()
    ) -> None:
        """Serialize dispatching in these districts, and in every district of these couriers,
        until the transaction ends.

        PostgreSQL takes transaction-scoped advisory locks in id order, so two
        transactions never wait on each other crosswise. SQLite needs nothing (not even the
        couriers' districts looked up): BEGIN IMMEDIATE already admits one writer at a time.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        district_ids = list(district_ids)
        district_ids += await self.couriers.districts_of(c for c in of_couriers if c is not None)
        for district_id in sorted(set(district_ids)):
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": DISPATCH_LOCK_NAMESPACE, "key": district_id},
            )


class UnitOfWorkFactory:
    """Makes a fresh unit of work per caller; injected wherever one is needed.

    On SQLite, this process's writers also take turns here before BEGIN IMMEDIATE: waiting on
    an asyncio lock is prompt and fair, where SQLite's busy handler polls with growing sleeps.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        lock_wait: float = SQLITE_LOCK_WAIT_SECONDS,
        rules: DispatchRules = DispatchRules(),
    ) -> None:
        self.engine = engine
        self.lock_wait = lock_wait
        self.rules = rules
        self._writer = session_factory(engine, writes=True)
        self._reader = session_factory(engine, writes=False)
        self._writers = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._listeners: list[Callable[[], None]] = []
        self._event_listeners: list[Callable[[], None]] = []
        self._offer_listeners: list[Callable[[Sequence[Decided]], None]] = []

    def __call__(self, stamp: Stamp | None = None) -> UnitOfWork:
        return UnitOfWork(self, stamp)

    def sessions(self, writes: bool) -> async_sessionmaker[AsyncSession]:
        return self._writer if writes else self._reader

    async def begin(self, writes: bool) -> AsyncSession:
        """A session with its transaction begun. A SQLite writer whose BEGIN IMMEDIATE finds
        the lock held by another process (a backup, a migration by hand) tries again after an
        asyncio sleep, never in SQLite's busy handler, which would stall the event loop."""
        deadline = time.monotonic() + self.lock_wait
        pause = _LOCK_POLL_SECONDS[0]
        while True:
            session = self.sessions(writes)()
            try:
                await session.connection()
                return session
            except OperationalError as error:
                await session.close()
                if not is_locked(error):
                    raise
                if time.monotonic() + pause > deadline:
                    raise DatabaseLocked(
                        f"SQLite's write lock was held elsewhere for {self.lock_wait:.0f} s"
                    ) from error
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LOCK_POLL_SECONDS[1])

    async def writable(self) -> bool:
        """Whether a writer could begin now: on SQLite, whether this process's writers are
        not stuck and no other process holds the write lock (asked once, never waited for).
        Raises when the database cannot be reached."""
        if self._writers is None:
            return True
        if self._writers.locked():
            return False  # one of ours waits, for another process most likely
        async with self._writers:
            session = self.sessions(True)()
            try:
                await session.connection()
            except OperationalError as error:
                if is_locked(error):
                    return False
                raise
            finally:
                await session.close()
        return True

    def turn(self, writes: bool) -> AbstractAsyncContextManager[object]:
        """What a transaction waits for before it begins: its writer's turn, on SQLite."""
        return self._writers if writes and self._writers is not None else nullcontext()

    def on_notices(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that wrote notices to deliver."""
        self._listeners.append(listener)

    def notices_committed(self) -> None:
        for listener in self._listeners:
            listener()

    def on_events(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each commit that wrote webhook deliveries."""
        self._event_listeners.append(listener)

    def events_committed(self) -> None:
        for listener in self._event_listeners:
            listener()

    def on_offers(self, listener: Callable[[Sequence[Decided]], None]) -> None:
        """Call `listener` with the offers decided, after each commit that decided some."""
        self._offer_listeners.append(listener)

    def offers_decided(self, decided: Sequence[Decided]) -> None:
        for listener in self._offer_listeners:
            listener(decided)
