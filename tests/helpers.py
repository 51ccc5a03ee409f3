"""Drive the services the way the bot does: one unit of work per call."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import select

from db.models import OutboxMessage
from db.uow import UnitOfWork, UnitOfWorkFactory
from services import couriers, districts, staff

ADMIN = 1000
DISPATCHER = 1001
DISPATCH_CHAT = -100500
STRANGER = 999

P = ParamSpec("P")
R = TypeVar("R")


class Desk:
    """Calls each use case with a fresh unit of work, and reads what the database holds."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory

    async def __call__(
        self,
        use_case: Callable[Concatenate[UnitOfWork, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        return await use_case(self.uow_factory(), *args, **kwargs)

    async def outbox(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Every notification written so far, oldest first."""
        uow = self.uow_factory()
        async with uow.read():
            rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            return [(row.chat_id, row.notice, row.payload) for row in rows]

    async def staff_up(self) -> None:
        """An admin (from the settings) who made one dispatcher."""
        await self(staff.sync_admins, [ADMIN])
        await self(staff.grant_dispatcher, ADMIN, DISPATCHER)

    async def add_districts(self, *names: str) -> dict[str, int]:
        return {name: (await self(districts.add_district, ADMIN, name)).id for name in names}

    async def add_courier(
        self, telegram_id: int, district_ids: Sequence[int], name: str | None = None
    ) -> int:
        """An active courier, online and free."""
        view = await self(
            couriers.register_courier,
            telegram_id,
            name or f"Courier {telegram_id}",
            district_ids,
            approval_required=False,
        )
        return view.id
