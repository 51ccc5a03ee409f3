from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import case, delete, func, insert, select, update

from db.models import Courier, CourierStatus, District, courier_districts
from db.repositories.base import Repository

_FREE = (
    Courier.status == CourierStatus.ACTIVE,
    Courier.online.is_(True),
    Courier.free_since.is_not(None),
)


class CourierRepository(Repository):
    async def add(
        self, telegram_id: int, name: str, status: CourierStatus, locale: str | None, now: datetime
    ) -> Courier:
        courier = Courier(
            telegram_id=telegram_id,
            name=name,
            status=status,
            online=True,
            free_since=now,
            locale=locale,
            created_at=now,
        )
        self.session.add(courier)
        await self.session.flush()
        return courier

    async def get(self, courier_id: int) -> Courier | None:
        return await self.session.get(Courier, courier_id, populate_existing=True)

    async def by_telegram_id(self, telegram_id: int) -> Courier | None:
        statement = select(Courier).where(Courier.telegram_id == telegram_id)
        return (await self.session.scalars(statement)).one_or_none()

    async def by_ids(self, courier_ids: Iterable[int]) -> dict[int, Courier]:
        rows = await self.session.scalars(select(Courier).where(Courier.id.in_(set(courier_ids))))
        return {courier.id: courier for courier in rows}

    async def page(self, offset: int, limit: int) -> list[Courier]:
        statement = select(Courier).order_by(Courier.id).offset(offset).limit(limit)
        return list(await self.session.scalars(statement))

    async def count(self) -> int:
        return (await self.session.scalar(select(func.count()).select_from(Courier))) or 0

    async def district_ids(self, courier_id: int) -> list[int]:
        statement = select(courier_districts.c.district_id).where(
            courier_districts.c.courier_id == courier_id
        )
        return list(await self.session.scalars(statement))

    async def district_names(self, courier_ids: Iterable[int]) -> dict[int, list[str]]:
        statement = (
            select(courier_districts.c.courier_id, District.name)
            .join(District)
            .where(courier_districts.c.courier_id.in_(set(courier_ids)))
            .order_by(District.name_key)
        )
        names: dict[int, list[str]] = defaultdict(list)
        for courier_id, name in await self.session.execute(statement):
            names[courier_id].append(name)
        return names

    async def set_districts(self, courier_id: int, district_ids: Sequence[int]) -> None:
        await self.session.execute(
            delete(courier_districts).where(courier_districts.c.courier_id == courier_id)
        )
        await self.session.execute(
            insert(courier_districts),
            [{"courier_id": courier_id, "district_id": d} for d in district_ids],
        )

    async def find_free_for_district(self, district_id: int) -> int | None:
        """The courier of this district who has been free the longest, if any."""
        statement = (
            select(Courier.id)
            .join(courier_districts, courier_districts.c.courier_id == Courier.id)
            .where(courier_districts.c.district_id == district_id, *_FREE)
            .order_by(Courier.free_since, Courier.id)
            .limit(1)
        )
        return await self.session.scalar(statement)

    async def claim(self, courier_id: int) -> bool:
        """Mark a free courier busy; False if someone else got them first."""
        return await self._compare_and_set(
            update(Courier).where(Courier.id == courier_id, *_FREE).values(free_since=None)
        )

    async def release(self, courier_id: int, now: datetime) -> bool:
        return await self._compare_and_set(
            update(Courier)
            .where(Courier.id == courier_id, Courier.free_since.is_(None))
            .values(free_since=now)
        )

    async def set_online(self, courier_id: int, online: bool, now: datetime) -> None:
        """Start or end a shift; a free courier coming online queues up from now."""
        values: dict[str, object] = {"online": online}
        if online:
            values["free_since"] = case((Courier.free_since.is_(None), None), else_=now)
        await self.session.execute(update(Courier).where(Courier.id == courier_id).values(values))

    async def set_status(
        self, courier_id: int, status: CourierStatus, expected: CourierStatus
    ) -> bool:
        return await self._compare_and_set(
            update(Courier)
            .where(Courier.id == courier_id, Courier.status == expected)
            .values(status=status)
        )

    async def set_locale(self, courier_id: int, locale: str) -> None:
        await self.session.execute(
            update(Courier).where(Courier.id == courier_id).values(locale=locale)
        )
