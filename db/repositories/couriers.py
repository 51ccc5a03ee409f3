from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, case, delete, func, insert, select, update

from db.models import Courier, CourierPosition, CourierStatus, District, courier_districts
from db.repositories.base import Repository, in_state, is_id
from db.repositories.positions import copy_cells

_CAN_TAKE_ORDERS = and_(in_state(Courier.status, CourierStatus.ACTIVE), Courier.online)


class CourierRepository(Repository):
    """Couriers, and the copy of their availability that finding a free courier reads.

    `courier_districts.free_since` must equal the courier's `free_since` while they are
    active and online, and be NULL otherwise. Every method that changes status, shift or
    freeness here keeps it so; nothing else writes those columns.
    """

    async def add(
        self,
        telegram_id: int | None,
        name: str,
        status: CourierStatus,
        locale: str | None,
        now: datetime,
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
        if not is_id(courier_id):
            return None
        return await self.session.get(Courier, courier_id, populate_existing=True)

    async def lock(self, courier_id: int) -> Courier | None:
        """The courier, row-locked until the transaction ends (SQLite: its one writer).

        FOR NO KEY UPDATE: rows that refer to the courier (outbox, orders) can still be
        written meanwhile; FOR UPDATE would deadlock against them on PostgreSQL.
        """
        if not is_id(courier_id):
            return None
        statement = select(Courier).where(Courier.id == courier_id).with_for_update(key_share=True)
        statement = statement.execution_options(populate_existing=True)
        return (await self.session.scalars(statement)).one_or_none()

    async def by_sid(self, sid: UUID) -> Courier | None:
        statement = (
            select(Courier).where(Courier.sid == sid).execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def link_telegram(self, courier_id: int, telegram_id: int, locale: str | None) -> bool:
        """Connect a courier to a Telegram account; False if they already have one."""
        return await self._compare_and_set(
            update(Courier)
            .where(Courier.id == courier_id, Courier.telegram_id.is_(None))
            .values(telegram_id=telegram_id, locale=locale)
        )

    async def by_telegram_id(self, telegram_id: int) -> Courier | None:
        statement = select(Courier).where(Courier.telegram_id == telegram_id)
        return (await self.session.scalars(statement)).one_or_none()

    async def by_ids(self, courier_ids: Iterable[int]) -> dict[int, Courier]:
        return await self._by_ids(Courier, courier_ids)

    async def page(self, offset: int, limit: int) -> list[Courier]:
        statement = select(Courier).order_by(Courier.id).offset(offset).limit(limit)
        return list(await self.session.scalars(statement))

    async def count(self) -> int:
        return (await self.session.scalar(select(func.count()).select_from(Courier))) or 0

    async def pending(self, limit: int) -> list[Courier]:
        """Couriers waiting for approval, oldest request first."""
        statement = (
            select(Courier)
            .where(in_state(Courier.status, CourierStatus.PENDING))
            .order_by(Courier.id)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def district_ids(self, courier_id: int) -> list[int]:
        if not is_id(courier_id):
            return []
        statement = select(courier_districts.c.district_id).where(
            courier_districts.c.courier_id == courier_id
        )
        return list(await self.session.scalars(statement))

    async def districts_of(self, courier_ids: Iterable[int]) -> list[int]:
        """The districts any of these couriers serves, in one query."""
        wanted = {c for c in courier_ids if is_id(c)}
        if not wanted:
            return []
        statement = (
            select(courier_districts.c.district_id)
            .where(courier_districts.c.courier_id.in_(wanted))
            .distinct()
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
        await self._copy_availability(courier_id)
        await copy_cells(self.session, [courier_id])

    async def longest_free(
        self, district_id: int, *, excluding: Collection[int] = ()
    ) -> int | None:
        """The courier of this district who has been free the longest: one index lookup."""
        statement = (
            select(courier_districts.c.courier_id)
            .where(
                courier_districts.c.district_id == district_id,
                courier_districts.c.free_since.is_not(None),
            )
            .order_by(courier_districts.c.free_since, courier_districts.c.courier_id)
            .limit(1)
        )
        if excluding:
            statement = statement.where(courier_districts.c.courier_id.not_in(excluding))
        return await self.session.scalar(statement)

    async def claim(self, courier_id: int) -> Courier | None:
        """Mark a free courier busy and return them; None if someone else got them first."""
        statement = (
            update(Courier)
            .where(Courier.id == courier_id, _CAN_TAKE_ORDERS, Courier.free_since.is_not(None))
            .values(free_since=None)
            .returning(Courier)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        courier = (await self.session.scalars(statement)).one_or_none()
        if courier is not None:
            await self.session.execute(
                update(courier_districts)
                .where(courier_districts.c.courier_id == courier_id)
                .values(free_since=None)
            )
        return courier

    async def release(self, courier_id: int, now: datetime) -> bool:
        """A busy courier is free from now on."""
        released = await self._compare_and_set(
            update(Courier)
            .where(Courier.id == courier_id, Courier.free_since.is_(None))
            .values(free_since=now)
        )
        if released:
            await self._copy_availability(courier_id)
        return released

    async def set_online(self, courier_id: int, online: bool, now: datetime) -> None:
        """Start or end a shift; a free courier coming online queues up from now, with no
        missed offers counted against them. At the end, where they were is forgotten."""
        values: dict[str, object] = {"online": online}
        if online:
            values["free_since"] = case((Courier.free_since.is_(None), None), else_=now)
            values["missed_offers"] = 0
        await self.session.execute(update(Courier).where(Courier.id == courier_id).values(values))
        await self._copy_availability(courier_id)
        if not online:
            await self._forget_position(courier_id)

    async def count_answer(self, courier_id: int, *, missed: bool) -> int:
        """An offer they answered (the count starts again) or let run out (one more); how many
        they have let run out in a row now."""
        count = Courier.missed_offers + 1 if missed else 0
        statement = (
            update(Courier)
            .where(Courier.id == courier_id)
            .values(missed_offers=count)
            .returning(Courier.missed_offers)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def set_status(
        self, courier_id: int, status: CourierStatus, expected: Iterable[CourierStatus]
    ) -> bool:
        changed = await self._compare_and_set(
            update(Courier)
            .where(Courier.id == courier_id, Courier.status.in_(list(expected)))
            .values(status=status)
        )
        if changed:
            await self._copy_availability(courier_id)
            if status is not CourierStatus.ACTIVE:
                await self._forget_position(courier_id)
        return changed

    async def set_locale(self, courier_id: int, locale: str) -> None:
        await self.session.execute(
            update(Courier).where(Courier.id == courier_id).values(locale=locale)
        )

    async def _forget_position(self, courier_id: int) -> None:
        """Positions are kept during a shift only."""
        await self.session.execute(
            delete(CourierPosition).where(CourierPosition.courier_id == courier_id)
        )
        await copy_cells(self.session, [courier_id])

    async def _copy_availability(self, courier_id: int) -> None:
        """Copy the courier's free_since to their district rows while they can take orders."""
        available_since = (
            select(case((_CAN_TAKE_ORDERS, Courier.free_since), else_=None))
            .where(Courier.id == courier_id)
            .scalar_subquery()
        )
        await self.session.execute(
            update(courier_districts)
            .where(courier_districts.c.courier_id == courier_id)
            .values(free_since=available_since)
        )
