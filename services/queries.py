"""Loaders of read models: turn ORM rows into the frozen views services return."""

from collections.abc import Sequence
from datetime import datetime

from db.models import Courier, District, Order, OrderStatus
from db.uow import UnitOfWork
from services.read_models import CourierView, OrderView


def courier_view(courier: Courier, districts: Sequence[str]) -> CourierView:
    return CourierView(
        id=courier.id,
        sid=courier.sid,
        telegram_id=courier.telegram_id,
        name=courier.name,
        status=courier.status,
        online=courier.online,
        busy=courier.free_since is None,
        districts=tuple(districts),
    )


async def courier_views(uow: UnitOfWork, couriers: Sequence[Courier]) -> list[CourierView]:
    names = await uow.couriers.district_names(c.id for c in couriers)
    return [courier_view(c, names.get(c.id, [])) for c in couriers]


async def load_courier_view(uow: UnitOfWork, courier: Courier) -> CourierView:
    return (await courier_views(uow, [courier]))[0]


def order_view(
    order: Order,
    district: District,
    courier: Courier | None,
    position: int | None = None,
    offer_expires_at: datetime | None = None,
) -> OrderView:
    return OrderView(
        id=order.id,
        sid=order.sid,
        district=district.name,
        description=order.description,
        status=order.status,
        source=order.source,
        courier_id=courier.id if courier else None,
        courier_sid=courier.sid if courier else None,
        courier_name=courier.name if courier else None,
        courier_telegram_id=courier.telegram_id if courier else None,
        dispatcher_chat_id=order.dispatcher_chat_id,
        created_at=order.created_at,
        assigned_at=order.assigned_at,
        completed_at=order.completed_at,
        cancelled_at=order.cancelled_at,
        queue_position=position,
        offer_expires_at=offer_expires_at,
        pickup=order.pickup,
        dropoff=order.dropoff,
    )


async def order_views(uow: UnitOfWork, orders: Sequence[Order]) -> list[OrderView]:
    """Views of several orders; queued ones carry their place in line, offered ones when
    their offer runs out."""
    districts = await uow.districts.by_ids(o.district_id for o in orders)
    couriers = await uow.couriers.by_ids(o.courier_id for o in orders if o.courier_id)
    queued = [o.district_id for o in orders if o.status is OrderStatus.QUEUED]
    positions = await uow.orders.queue_positions(queued) if queued else {}
    offered = [o.id for o in orders if o.status is OrderStatus.OFFERED]
    deadlines = await uow.offers.deadlines(offered) if offered else {}
    return [
        order_view(
            order,
            districts[order.district_id],
            couriers.get(order.courier_id) if order.courier_id else None,
            positions.get(order.id),
            deadlines.get(order.id),
        )
        for order in orders
    ]


async def load_order_view(uow: UnitOfWork, order: Order) -> OrderView:
    return (await order_views(uow, [order]))[0]
