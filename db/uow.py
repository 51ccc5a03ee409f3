"""The unit of work: one session, one transaction, every repository."""

from collections.abc import Iterable
from types import TracebackType
from typing import Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.couriers import CourierRepository
from db.repositories.districts import DistrictRepository
from db.repositories.invites import InviteRepository
from db.repositories.orders import OrderRepository
from db.repositories.outbox import OutboxRepository
from db.repositories.staff import StaffRepository

# Namespace of the PostgreSQL advisory locks that serialize dispatching per district.
DISPATCH_LOCK_NAMESPACE = 0x44535054


class UnitOfWork:
    """Use as `async with uow:`; what is not committed by the end is rolled back."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._session = session = self._session_factory()
        self.districts = DistrictRepository(session)
        self.couriers = CourierRepository(session)
        self.orders = OrderRepository(session)
        self.staff = StaffRepository(session)
        self.invites = InviteRepository(session)
        self.outbox = OutboxRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session, self._session = self.session, None
        try:
            await session.rollback()
        finally:
            await session.close()

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is used outside `async with`")
        return self._session

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    async def lock_districts(self, district_ids: Iterable[int]) -> None:
        """Serialize dispatching in these districts until the transaction ends.

        PostgreSQL takes transaction-scoped advisory locks in id order, so two
        transactions never wait on each other crosswise. SQLite needs nothing:
        BEGIN IMMEDIATE already admits one writer at a time.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        for district_id in sorted(set(district_ids)):
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
                {"namespace": DISPATCH_LOCK_NAMESPACE, "key": district_id},
            )


class UnitOfWorkFactory:
    """Makes a fresh unit of work per use; injected wherever one is needed."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)
