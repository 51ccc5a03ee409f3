"""Notifications commit with their change, and vanish with it."""

from zoneinfo import ZoneInfo

import pytest

from db.uow import UnitOfWork
from services import couriers, orders
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk


class CommitFailed(Exception):
    pass


def posted(order_id: int, *, courier: int | None = None, position: int | None = None) -> dict:
    """The payload of the answer to posting an order, to the chat it was posted from."""
    name = f"Courier {courier}" if courier else None
    return {
        "order_id": order_id,
        "district": "North",
        "courier_id": courier,
        "courier_name": name,
        "position": position,
        "offered": False,
        "distance_m": None,
    }


async def test_each_change_writes_exactly_its_notifications(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    first = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North one")
    second = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North two")

    await desk(orders.complete_order, 1, first.id)

    assert await desk.outbox() == [
        (1, "order_assigned", {"order_id": first.id, "district": "North", "description": "one"}),
        (DISPATCH_CHAT, "order_posted", posted(first.id, courier=1)),
        (DISPATCH_CHAT, "order_posted", posted(second.id, position=1)),
        (
            DISPATCH_CHAT,
            "dispatch_completed",
            {"order_id": first.id, "courier_id": 1, "courier_name": "Courier 1", "seconds": 0},
        ),
        (1, "order_assigned", {"order_id": second.id, "district": "North", "description": "two"}),
        (
            DISPATCH_CHAT,
            "dispatch_assigned",
            {
                "order_id": second.id,
                "courier_id": 1,
                "courier_name": "Courier 1",
                "distance_m": None,
            },
        ),
    ]


async def test_a_failed_commit_leaves_neither_change_nor_notification(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
):
    ids = await desk.add_districts("North")
    await desk.add_courier(1, [ids["North"]])
    order = await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North one")
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North two")
    before = await desk.outbox()

    async def failing_commit(self: UnitOfWork) -> None:
        await self.session.flush()
        raise CommitFailed

    with monkeypatch.context() as patch:
        patch.setattr(UnitOfWork, "commit", failing_commit)
        with pytest.raises(CommitFailed):
            await desk(orders.complete_order, 1, order.id)

    assert await desk.outbox() == before
    card = await desk(couriers.courier_card, DISPATCHER, 1, ZoneInfo("UTC"))
    assert card.active_order is not None
    assert card.active_order.id == order.id
    assert card.total_completed == 0
