"""Staff use cases: admins from the settings, dispatchers granted by admins, who someone is."""

from collections.abc import Collection

from db.models import StaffRole
from db.uow import UnitOfWork
from services import clock
from services.access import require_admin, staff_role
from services.errors import Conflict, ErrorCode, NotFound
from services.queries import load_courier_view
from services.read_models import Identity, StaffView


async def sync_admins(uow: UnitOfWork, admin_ids: Collection[int]) -> None:
    """Make the database agree with ADMIN_IDS; run once at start-up."""
    async with uow.write():
        now = clock.utcnow()
        await uow.staff.demote_admins_except(admin_ids)
        for telegram_id in admin_ids:
            await uow.staff.upsert(telegram_id, StaffRole.ADMIN, now)
        await uow.commit()


async def grant_dispatcher(uow: UnitOfWork, actor_id: int, telegram_id: int) -> StaffView:
    async with uow.write():
        await require_admin(uow, actor_id)
        role = await staff_role(uow, telegram_id)
        if role is not None:
            raise Conflict(ErrorCode.ALREADY_STAFF, telegram_id=telegram_id, role=role)
        await uow.staff.upsert(telegram_id, StaffRole.DISPATCHER, clock.utcnow())
        await uow.commit()
    return StaffView(telegram_id, StaffRole.DISPATCHER)


async def revoke_dispatcher(uow: UnitOfWork, actor_id: int, telegram_id: int) -> None:
    """Admins stay admins: they are removed from ADMIN_IDS, not here."""
    async with uow.write():
        await require_admin(uow, actor_id)
        if await staff_role(uow, telegram_id) is StaffRole.ADMIN:
            raise Conflict(ErrorCode.CANNOT_REVOKE_ADMIN, telegram_id=telegram_id)
        if not await uow.staff.remove(telegram_id, StaffRole.DISPATCHER):
            raise NotFound(ErrorCode.DISPATCHER_NOT_FOUND, telegram_id=telegram_id)
        await uow.commit()


async def list_staff(uow: UnitOfWork, actor_id: int) -> list[StaffView]:
    async with uow.read():
        await require_admin(uow, actor_id)
        return [StaffView(m.telegram_id, m.role) for m in await uow.staff.all()]


async def identify(uow: UnitOfWork, telegram_id: int, locale: str | None = None) -> Identity:
    """Who this user is; given their language, remembers it for the notices they will get.

    A read, unless the language is new to us: only then a short write follows.
    """
    async with uow.read():
        member = await uow.staff.get(telegram_id)
        courier = await uow.couriers.by_telegram_id(telegram_id)
        identity = Identity(
            telegram_id=telegram_id,
            role=member.role if member else None,
            courier=await load_courier_view(uow, courier) if courier else None,
        )
        stale = locale is not None and any(
            known is not None and known.locale != locale for known in (member, courier)
        )
    if stale and locale is not None:
        async with uow.write():
            await uow.staff.set_locale(telegram_id, locale)
            if identity.courier is not None:
                await uow.couriers.set_locale(identity.courier.id, locale)
            await uow.commit()
    return identity
