"""What the operators watch: orders by state and the notifications still to send."""

from dataclasses import dataclass

from db.models import OrderStatus
from db.uow import UnitOfWork
from services import clock


@dataclass(frozen=True, slots=True)
class Snapshot:
    orders: dict[OrderStatus, int]  # waiting and in progress (the history grows for ever)
    outbox_waiting: int
    outbox_oldest_seconds: float  # how long the oldest waiting notification has waited; 0: none


async def snapshot(uow: UnitOfWork) -> Snapshot:
    async with uow.read():
        orders = await uow.orders.count_by_status()
        waiting, oldest = await uow.outbox.backlog()
    age = (clock.utcnow() - oldest).total_seconds() if oldest else 0.0
    return Snapshot(orders, waiting, max(age, 0.0))
