from collections.abc import Collection, Iterable
from datetime import datetime
from uuid import uuid4

from sqlalchemy import func, select

from db.models import Courier, CourierStatus, District, Order, OrderStatus, courier_districts
from db.repositories.base import Repository, in_state, is_id


class DistrictRepository(Repository):
    async def add(self, name: str, name_key: str, now: datetime) -> District | None:
        """Insert a district; None when the name is taken (checked by the database)."""
        statement = (
            self._insert(District)
            .values(name=name, name_key=name_key, created_at=now, sid=uuid4())
            .on_conflict_do_nothing(index_elements=[District.name_key])
            .returning(District)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def get(self, district_id: int) -> District | None:
        if not is_id(district_id):
            return None
        return await self.session.get(District, district_id)

    async def by_ids(self, district_ids: Iterable[int]) -> dict[int, District]:
        return await self._by_ids(District, district_ids)

    async def by_keys(self, name_keys: Collection[str]) -> list[District]:
        """The districts whose compared names are among these."""
        rows = await self.session.scalars(select(District).where(District.name_key.in_(name_keys)))
        return list(rows)

    async def all(self) -> list[District]:
        return list(await self.session.scalars(select(District).order_by(District.name_key)))

    async def all_with_counts(self) -> list[tuple[District, int, int]]:
        """Each district with its active couriers and its waiting orders."""
        couriers = (
            select(func.count())
            .select_from(courier_districts.join(Courier))
            .where(
                courier_districts.c.district_id == District.id,
                in_state(Courier.status, CourierStatus.ACTIVE),
            )
            .scalar_subquery()
        )
        queued = (
            select(func.count())
            .where(Order.district_id == District.id, in_state(Order.status, OrderStatus.QUEUED))
            .scalar_subquery()
        )
        rows = await self.session.execute(
            select(District, couriers, queued).order_by(District.name_key)
        )
        return [(district, n_couriers, n_queued) for district, n_couriers, n_queued in rows]
