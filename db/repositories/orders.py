from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Offer,
    OfferOutcome,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderSource,
    OrderStatus,
    Point,
    courier_districts,
)
from db.repositories.base import Repository, in_state, in_states, is_id, table

_ACTIVE = (OrderStatus.QUEUED, OrderStatus.OFFERED, OrderStatus.ASSIGNED)
# What a shop's webhooks call each change: a refused offer puts the order back in the queue.
_WEBHOOK_EVENT = {
    OrderEventKind.DECLINED: OrderEventKind.REQUEUED,
    OrderEventKind.EXPIRED: OrderEventKind.REQUEUED,
}


@dataclass(frozen=True, slots=True)
class OrderChange:
    event: OrderEventKind
    at: datetime
    order: dict[str, Any]  # its columns right after the change


def _snapshot(order: Order) -> dict[str, Any]:
    return {column.key: getattr(order, column.key) for column in table(Order).columns}


def _queued() -> ColumnElement[bool]:
    return in_state(Order.status, OrderStatus.QUEUED)


def held() -> ColumnElement[bool]:
    """Offered or in progress: what a courier holds, one at most (uq_orders_one_in_progress)."""
    return in_states(Order.status, OrderStatus.OFFERED, OrderStatus.ASSIGNED)


class OrderRepository(Repository):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._history: list[dict[str, object]] = []
        # The changes of shops' orders in this transaction, each with the order right after
        # it: what their webhooks report (WebhookRepository.write_events).
        self.shop_changes: list[OrderChange] = []

    async def add(
        self,
        district_id: int,
        description: str,
        source: OrderSource,
        dispatcher_id: int | None,
        dispatcher_chat_id: int | None,
        dispatcher_locale: str | None,
        now: datetime,
        source_key: str | None = None,
        shop_id: int | None = None,
        *,
        pickup: Point | None = None,
        dropoff: Point | None = None,
    ) -> Order:
        order = Order(
            source_key=source_key,
            shop_id=shop_id,
            district_id=district_id,
            description=description,
            status=OrderStatus.QUEUED,
            source=source,
            dispatcher_id=dispatcher_id,
            dispatcher_chat_id=dispatcher_chat_id,
            dispatcher_locale=dispatcher_locale,
            created_at=now,
        )
        order.place(pickup, dropoff)
        self.session.add(order)
        await self.session.flush()
        self.add_event(order.id, OrderEventKind.CREATED, None, now)
        return order

    async def get(self, order_id: int) -> Order | None:
        if not is_id(order_id):
            return None
        return await self.session.get(Order, order_id, populate_existing=True)

    async def by_ids(self, order_ids: Iterable[int]) -> dict[int, Order]:
        return await self._by_ids(Order, order_ids)

    async def by_source(self, source_key: str) -> Order | None:
        """The order posted from this source (a message, a form, an idempotency key)."""
        statement = select(Order).where(Order.source_key == source_key)
        return (await self.session.scalars(statement)).one_or_none()

    async def by_sid(self, sid: UUID) -> Order | None:
        statement = select(Order).where(Order.sid == sid).execution_options(populate_existing=True)
        return (await self.session.scalars(statement)).one_or_none()

    def add_event(
        self, order_id: int, kind: OrderEventKind, courier_id: int | None, now: datetime
    ) -> None:
        """A line of the order's history, written when the transaction commits."""
        self._history.append(
            {"order_id": order_id, "kind": kind, "courier_id": courier_id, "at": now}
        )

    async def write_history(self) -> None:
        """Insert the history lines added in this transaction, in one statement."""
        rows, self._history = self._history, []
        if rows:
            await self.session.execute(insert(table(OrderEvent)), rows)

    async def in_progress_for(self, courier_id: int) -> Order | None:
        """The order the courier carries, not one they are offered."""
        order = await self.held_by(courier_id)
        return order if order is not None and order.status is OrderStatus.ASSIGNED else None

    async def held_by(self, courier_id: int) -> Order | None:
        """The order the courier carries or is offered."""
        statement = select(Order).where(Order.courier_id == courier_id, held())
        return (await self.session.scalars(statement)).one_or_none()

    async def oldest_queued_for(self, courier_id: int) -> int | None:
        """The oldest waiting order of the courier's districts that they may take.

        One index lookup per district of theirs: the first queued order of each district
        that was not taken from this courier, nor declined or let run out by them, and the
        oldest of those.
        """
        refused = exists().where(
            Offer.order_id == Order.id,
            Offer.courier_id == courier_id,
            in_states(Offer.outcome, OfferOutcome.DECLINED, OfferOutcome.EXPIRED),
        )
        first_of_district = (
            select(Order.id)
            .where(
                _queued(),
                Order.district_id == courier_districts.c.district_id,
                or_(
                    Order.taken_from_courier_id.is_(None),
                    Order.taken_from_courier_id != courier_id,
                ),
                ~refused,
            )
            .order_by(Order.id)
            .limit(1)
            .scalar_subquery()
        )
        firsts = (
            select(first_of_district.label("order_id"))
            .where(courier_districts.c.courier_id == courier_id)
            .subquery()
        )
        oldest: int | None = await self.session.scalar(select(func.min(firsts.c.order_id)))
        return oldest

    async def queued_districts(self) -> list[int]:
        """Every district with an order waiting."""
        statement = select(Order.district_id).where(_queued()).distinct()
        return list(await self.session.scalars(statement))

    async def queued_in(self, district_id: int, after_id: int, limit: int) -> list[Order]:
        """Waiting orders of one district, oldest first, from past `after_id` on."""
        statement = (
            select(Order)
            .where(_queued(), Order.district_id == district_id, Order.id > after_id)
            .order_by(Order.id)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def queue_positions(self, district_ids: Iterable[int]) -> dict[int, int]:
        """Place in line of every queued order of these districts (1 is next), in one query."""
        place = func.row_number().over(partition_by=Order.district_id, order_by=Order.id)
        statement = select(Order.id, place).where(
            _queued(), Order.district_id.in_(set(district_ids))
        )
        return dict((await self.session.execute(statement)).all())

    async def queue_position(self, order: Order) -> int:
        """1 for the next order of its district's queue."""
        statement = select(func.count()).where(
            _queued(), Order.district_id == order.district_id, Order.id <= order.id
        )
        return (await self.session.scalar(statement)) or 0

    async def assign(self, order_id: int, courier_id: int, now: datetime) -> Order | None:
        """Give a queued order to a courier, or an offered one to the courier who accepted;
        None if it is not so any more."""
        offered_to_them = (Order.status == OrderStatus.OFFERED) & (Order.courier_id == courier_id)
        return await self._transition(
            order_id,
            OrderEventKind.ASSIGNED,
            courier_id,
            now,
            [(Order.status == OrderStatus.QUEUED) | offered_to_them],
            {
                "status": OrderStatus.ASSIGNED,
                "courier_id": courier_id,
                "assigned_at": now,
                "overdue_reminded_at": None,
            },
        )

    async def offer(self, order_id: int, courier_id: int, now: datetime) -> Order | None:
        """Offer a queued order to a courier; None if it is no longer queued."""
        return await self._transition(
            order_id,
            OrderEventKind.OFFERED,
            courier_id,
            now,
            [Order.status == OrderStatus.QUEUED],
            {"status": OrderStatus.OFFERED, "courier_id": courier_id},
        )

    async def refuse(
        self, order_id: int, courier_id: int, event: OrderEventKind, now: datetime
    ) -> Order | None:
        """The courier declined the order offered to them, or let the offer run out (`event`):
        it is queued again. None if it was not offered to them."""
        return await self._transition(
            order_id,
            event,
            courier_id,
            now,
            [Order.status == OrderStatus.OFFERED, Order.courier_id == courier_id],
            {"status": OrderStatus.QUEUED, "courier_id": None, "refusals": Order.refusals + 1},
        )

    async def complete(self, order_id: int, courier_id: int, now: datetime) -> Order | None:
        return await self._transition(
            order_id,
            OrderEventKind.COMPLETED,
            courier_id,
            now,
            [Order.status == OrderStatus.ASSIGNED, Order.courier_id == courier_id],
            {"status": OrderStatus.COMPLETED, "completed_at": now},
        )

    async def cancel(self, order: Order, now: datetime) -> Order | None:
        """Cancel an order still as `order` was read: same state, same courier."""
        same_courier = (
            Order.courier_id.is_(None)
            if order.courier_id is None
            else Order.courier_id == order.courier_id
        )
        return await self._transition(
            order.id,
            OrderEventKind.CANCELLED,
            order.courier_id,
            now,
            [Order.status == order.status, Order.status.in_(_ACTIVE), same_courier],
            {"status": OrderStatus.CANCELLED, "cancelled_at": now},
        )

    async def requeue(self, order_id: int, courier_id: int, now: datetime) -> Order | None:
        """Take an order back from its courier (or the one it is offered to) into the queue;
        it remembers whom from."""
        return await self._transition(
            order_id,
            OrderEventKind.REQUEUED,
            courier_id,
            now,
            [held(), Order.courier_id == courier_id],
            {
                "status": OrderStatus.QUEUED,
                "courier_id": None,
                "assigned_at": None,
                "taken_from_courier_id": courier_id,
            },
        )

    async def _transition(
        self,
        order_id: int,
        event: OrderEventKind,
        courier_id: int | None,
        now: datetime,
        conditions: list[ColumnElement[bool]],
        values: dict[str, object],
    ) -> Order | None:
        """Compare-and-set one order's state and, if it changed, record the event; the order
        as it is now, or None if it was not as expected."""
        statement = (
            update(Order)
            .where(Order.id == order_id, *conditions)
            .values(values)
            .returning(Order)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        order = (await self.session.scalars(statement)).one_or_none()
        if order is not None:
            self.add_event(order_id, event, courier_id, now)
            if order.shop_id is not None:
                named = _WEBHOOK_EVENT.get(event, event)
                self.shop_changes.append(OrderChange(named, now, _snapshot(order)))
        return order

    async def overdue(self, assigned_before: datetime, limit: int) -> list[Order]:
        """Orders in progress since before then, whose overdue reminder is not out yet."""
        statement = (
            select(Order)
            .where(
                held(),
                Order.status == OrderStatus.ASSIGNED,
                Order.assigned_at < assigned_before,
                Order.overdue_reminded_at.is_(None),
            )
            .order_by(Order.id)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def mark_reminded(self, order_id: int, now: datetime) -> bool:
        """Note the overdue reminder; False if it was already noted (by anyone)."""
        return await self._compare_and_set(
            update(Order)
            .where(
                Order.id == order_id,
                Order.status == OrderStatus.ASSIGNED,
                Order.overdue_reminded_at.is_(None),
            )
            .values(overdue_reminded_at=now)
        )

    async def move_dispatch_chat(self, old: int, new: int) -> None:
        """Orders in progress or waiting that were posted from a group now a supergroup."""
        await self.session.execute(
            update(Order)
            .where(Order.dispatcher_chat_id == old, Order.status.in_(_ACTIVE))
            .values(dispatcher_chat_id=new)
        )

    async def active_page(self, offset: int, limit: int) -> list[Order]:
        """Orders in progress first, then the queue, each oldest first."""
        in_progress_first = (Order.status == OrderStatus.QUEUED).asc()
        statement = (
            select(Order)
            .where(Order.status.in_(_ACTIVE))
            .order_by(in_progress_first, Order.id)
            .offset(offset)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def shop_page(
        self,
        shop_id: int,
        status: OrderStatus | None,
        district_id: int | None,
        since: datetime | None,
        after_id: int,
        limit: int,
    ) -> list[Order]:
        """A shop's orders with ids past `after_id`, oldest first, as filtered."""
        statement = select(Order).where(Order.shop_id == shop_id, Order.id > after_id)
        if status is not None:
            statement = statement.where(Order.status == status)
        if district_id is not None:
            statement = statement.where(Order.district_id == district_id)
        if since is not None:
            statement = statement.where(Order.created_at >= since)
        return list(await self.session.scalars(statement.order_by(Order.id).limit(limit)))

    async def count_active(self) -> int:
        statement = select(func.count()).where(Order.status.in_(_ACTIVE))
        return (await self.session.scalar(statement)) or 0

    async def completion_times(self, courier_id: int) -> list[tuple[datetime, datetime]]:
        """(assigned_at, completed_at) of every order the courier completed."""
        statement = select(Order.assigned_at, Order.completed_at).where(
            Order.courier_id == courier_id, in_state(Order.status, OrderStatus.COMPLETED)
        )
        return [(a, c) for a, c in await self.session.execute(statement) if a and c]

    async def completed_between(self, start: datetime, end: datetime) -> list[Order]:
        statement = select(Order).where(
            Order.status == OrderStatus.COMPLETED,
            Order.completed_at >= start,
            Order.completed_at < end,
        )
        return list(await self.session.scalars(statement))

    async def count_created_between(self, start: datetime, end: datetime) -> int:
        statement = select(func.count()).where(Order.created_at >= start, Order.created_at < end)
        return (await self.session.scalar(statement)) or 0

    async def count_by_status(self) -> dict[OrderStatus, int]:
        """How many orders wait, are offered and are in progress, each counted in a partial
        index, so the count never reads the history of completed orders."""
        waiting = select(func.count()).where(_queued())
        holding = select(func.count()).where(held())
        offered = select(func.count()).select_from(Offer).where(Offer.outcome.is_(None))
        counts = [(await self.session.scalar(s)) or 0 for s in (waiting, holding, offered)]
        return {
            OrderStatus.QUEUED: counts[0],
            OrderStatus.OFFERED: counts[2],
            OrderStatus.ASSIGNED: counts[1] - counts[2],
        }
