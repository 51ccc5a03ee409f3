"""Who may do what. Every use case checks its actor here, whatever the chat layer showed."""

from db.models import Courier, StaffRole
from db.uow import UnitOfWork
from services.errors import ErrorCode, Forbidden


async def staff_role(uow: UnitOfWork, telegram_id: int) -> StaffRole | None:
    member = await uow.staff.get(telegram_id)
    return member.role if member else None


async def require_dispatcher(uow: UnitOfWork, telegram_id: int) -> StaffRole:
    """Dispatchers and admins pass."""
    role = await staff_role(uow, telegram_id)
    if role is None:
        raise Forbidden(ErrorCode.DISPATCHER_ONLY)
    return role


async def require_admin(uow: UnitOfWork, telegram_id: int) -> None:
    if await staff_role(uow, telegram_id) is not StaffRole.ADMIN:
        raise Forbidden(ErrorCode.ADMIN_ONLY)


async def require_courier(uow: UnitOfWork, telegram_id: int) -> Courier:
    """The courier registered under this Telegram user, in any state."""
    courier = await uow.couriers.by_telegram_id(telegram_id)
    if courier is None:
        raise Forbidden(ErrorCode.COURIER_ONLY)
    return courier
