"""Who may do what. Every use case checks its actor here, whatever the front end showed."""

from dataclasses import dataclass

from db.models import Courier, StaffRole
from db.uow import UnitOfWork
from services.errors import ErrorCode, Forbidden


@dataclass(frozen=True, slots=True)
class Shop:
    """A shop's software over the HTTP API: it dispatches, and sees only its own orders."""

    id: int


# Who asks: a Telegram user (their id), or a shop.
Actor = int | Shop


async def staff_role(uow: UnitOfWork, telegram_id: int) -> StaffRole | None:
    member = await uow.staff.get(telegram_id)
    return member.role if member else None


async def require_dispatcher(uow: UnitOfWork, actor: Actor) -> None:
    """Dispatchers, admins and shops pass."""
    if isinstance(actor, Shop):
        return
    if await staff_role(uow, actor) is None:
        raise Forbidden(ErrorCode.DISPATCHER_ONLY)


async def require_admin(uow: UnitOfWork, telegram_id: int) -> None:
    if await staff_role(uow, telegram_id) is not StaffRole.ADMIN:
        raise Forbidden(ErrorCode.ADMIN_ONLY)


async def require_courier(uow: UnitOfWork, telegram_id: int) -> Courier:
    """The courier registered under this Telegram user, in any state."""
    courier = await uow.couriers.by_telegram_id(telegram_id)
    if courier is None:
        raise Forbidden(ErrorCode.COURIER_ONLY)
    return courier
