"""Staff use cases: admins from the settings, dispatchers granted by admins, who someone is."""

from collections.abc import Collection

from db.models import StaffRole
from db.uow import UnitOfWork
from services import clock
from services.access import require_admin, staff_role
from services.errors import Conflict, NotFound
from services.snapshots import load_courier_view
from services.views import Identity, StaffView


async def sync_admins(uow: UnitOfWork, admin_ids: Collection[int]) -> None:
    """Make the database agree with ADMIN_IDS; run once at start-up."""
    now = clock.utcnow()
    await uow.staff.demote_admins_except(admin_ids)
    for telegram_id in admin_ids:
        await uow.staff.upsert(telegram_id, StaffRole.ADMIN, now)
    await uow.commit()


async def grant_dispatcher(uow: UnitOfWork, actor_id: int, telegram_id: int) -> StaffView:
    await require_admin(uow, actor_id)
    role = await staff_role(uow, telegram_id)
    if role is not None:
        raise Conflict("already_staff", telegram_id=telegram_id, role=role)
    await uow.staff.upsert(telegram_id, StaffRole.DISPATCHER, clock.utcnow())
    await uow.commit()
    return StaffView(telegram_id, StaffRole.DISPATCHER)


async def revoke_dispatcher(uow: UnitOfWork, actor_id: int, telegram_id: int) -> None:
    """Admins stay admins: they are removed from ADMIN_IDS, not here."""
    await require_admin(uow, actor_id)
    if await staff_role(uow, telegram_id) is StaffRole.ADMIN:
        raise Conflict("cannot_revoke_admin", telegram_id=telegram_id)
    if not await uow.staff.remove(telegram_id, StaffRole.DISPATCHER):
        raise NotFound("dispatcher_not_found", telegram_id=telegram_id)
    await uow.commit()


async def list_staff(uow: UnitOfWork, actor_id: int) -> list[StaffView]:
    await require_admin(uow, actor_id)
    return [StaffView(m.telegram_id, StaffRole(m.role)) for m in await uow.staff.all()]


async def identify(uow: UnitOfWork, telegram_id: int, locale: str | None = None) -> Identity:
    """Who this user is; remembers their language for the notifications they will get."""
    role = await staff_role(uow, telegram_id)
    courier = await uow.couriers.by_telegram_id(telegram_id)
    if locale:
        if role is not None:
            await uow.staff.set_locale(telegram_id, locale)
        if courier is not None:
            await uow.couriers.set_locale(courier.id, locale)
        await uow.commit()
    courier_view = await load_courier_view(uow, courier) if courier else None
    return Identity(telegram_id=telegram_id, role=role, courier=courier_view)
