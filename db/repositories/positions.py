from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Courier, CourierPosition, CourierStatus, courier_districts
from db.repositories.base import Repository, in_state, is_id, table


@dataclass(frozen=True, slots=True)
class Nearby:
    """A free courier with a fresh position: where, and since when free."""

    courier_id: int
    lat: float
    lon: float
    free_since: datetime


async def copy_cells(session: AsyncSession, courier_ids: Collection[int]) -> None:
    """Copy each courier's position's cell (none: NULL) to their district rows."""
    kept = (
        select(CourierPosition.cell)
        .where(CourierPosition.courier_id == courier_districts.c.courier_id)
        .scalar_subquery()
    )
    await session.execute(
        update(courier_districts)
        .where(courier_districts.c.courier_id.in_(set(courier_ids)))
        .values(cell=kept)
    )


class PositionRepository(Repository):
    """Couriers' last positions (models.CourierPosition), kept during their shift only."""

    async def on_shift(self, telegram_ids: Iterable[int]) -> dict[int, int]:
        """The couriers on shift among these Telegram users: telegram id -> courier id. Their
        rows stay locked (FOR SHARE) until the transaction ends: no shift ends meanwhile, to
        leave a position written after it was erased."""
        wanted = set(telegram_ids)
        if not wanted:
            return {}
        statement = (
            select(Courier.telegram_id, Courier.id)
            .where(
                Courier.telegram_id.in_(wanted),
                Courier.online,
                in_state(Courier.status, CourierStatus.ACTIVE),
            )
            .order_by(Courier.id)
            .with_for_update(read=True)
        )
        rows = await self.session.execute(statement)
        return {telegram_id: courier_id for telegram_id, courier_id in rows if telegram_id}

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert positions; a row older than the one kept (a late copy: by its time, then by
        its update) changes nothing."""
        if not rows:
            return
        positions = table(CourierPosition)
        statement = self._insert(positions)
        newer = {column: statement.excluded[column] for column in rows[0] if column != "courier_id"}
        statement = statement.on_conflict_do_update(
            index_elements=["courier_id"],
            set_=newer,
            where=or_(
                positions.c.at < statement.excluded.at,
                and_(
                    positions.c.at == statement.excluded.at,
                    positions.c.update_id <= statement.excluded.update_id,
                ),
            ),
        )
        await self.session.execute(statement, list(rows))
        await copy_cells(self.session, [row["courier_id"] for row in rows])

    async def get(self, courier_id: int) -> CourierPosition | None:
        if not is_id(courier_id):
            return None
        return await self.session.get(CourierPosition, courier_id, populate_existing=True)

    async def erase(self, courier_ids: Collection[int]) -> None:
        """Forget where these couriers were: their shift is over."""
        await self.session.execute(
            delete(CourierPosition).where(CourierPosition.courier_id.in_(set(courier_ids)))
        )
        await copy_cells(self.session, courier_ids)

    async def erase_off_shift(self) -> int:
        """Forget the positions of couriers who are not on shift; how many went. A position
        written just as its courier's shift ended on another connection is caught here."""
        off = select(Courier.id).where(
            or_(~Courier.online, ~in_state(Courier.status, CourierStatus.ACTIVE))
        )
        statement = (
            delete(CourierPosition)
            .where(CourierPosition.courier_id.in_(off.scalar_subquery()))
            .returning(CourierPosition.courier_id)
        )
        erased = list(await self.session.scalars(statement))
        if erased:
            await copy_cells(self.session, erased)
        return len(erased)

    async def free_near(
        self,
        district_id: int,
        ranges: Sequence[tuple[int, int]],
        now: datetime,
        excluding: Collection[int] = (),
    ) -> list[Nearby]:
        """The district's free couriers whose fresh positions lie in these ranges of cells: read
        from the index of the district's free couriers (ix_courier_districts_free_near)."""
        statement = (
            select(
                CourierPosition.courier_id,
                CourierPosition.lat,
                CourierPosition.lon,
                courier_districts.c.free_since,
            )
            .join(CourierPosition, CourierPosition.courier_id == courier_districts.c.courier_id)
            .where(
                courier_districts.c.district_id == district_id,
                courier_districts.c.free_since.is_not(None),
                or_(*(courier_districts.c.cell.between(low, high) for low, high in ranges)),
                CourierPosition.fresh_until > now,
            )
        )
        if excluding:
            statement = statement.where(CourierPosition.courier_id.not_in(excluding))
        return [Nearby(*row) for row in await self.session.execute(statement)]
