from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update

from db.models import StaffMember, StaffRole
from db.repositories.base import Repository


class StaffRepository(Repository):
    async def get(self, telegram_id: int) -> StaffMember | None:
        return await self.session.get(StaffMember, telegram_id, populate_existing=True)

    async def all(self) -> list[StaffMember]:
        statement = select(StaffMember).order_by(StaffMember.role, StaffMember.telegram_id)
        return list(await self.session.scalars(statement))

    async def upsert(self, telegram_id: int, role: StaffRole, now: datetime) -> None:
        statement = self._insert(StaffMember).values(
            telegram_id=telegram_id, role=role, created_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[StaffMember.telegram_id], set_={"role": role}
        )
        await self.session.execute(statement)

    async def remove(self, telegram_id: int, role: StaffRole) -> bool:
        result = await self.session.execute(
            delete(StaffMember).where(
                StaffMember.telegram_id == telegram_id, StaffMember.role == role
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def demote_admins_except(self, admin_ids: Collection[int]) -> None:
        """Admins removed from the settings become plain dispatchers."""
        await self.session.execute(
            update(StaffMember)
            .where(StaffMember.role == StaffRole.ADMIN, StaffMember.telegram_id.not_in(admin_ids))
            .values(role=StaffRole.DISPATCHER)
        )

    async def set_locale(self, telegram_id: int, locale: str) -> None:
        await self.session.execute(
            update(StaffMember).where(StaffMember.telegram_id == telegram_id).values(locale=locale)
        )
