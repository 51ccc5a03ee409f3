"""/order: post, list, read, complete and cancel a shop's orders."""

import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BeforeValidator

from api import idempotency, schemas
from api.context import ApiContext, ShopCalling
from db.uow import UnitOfWork
from services import orders
from services.errors import Conflict, ErrorCode
from services.orders import OrderFilter, Places
from services.read_models import OrderStatus, OrderView, Point
from services.validation import MAX_ID

STATUS: dict[OrderStatus, tuple[schemas.Status, schemas.State]] = {
    OrderStatus.QUEUED: ("0", "queued"),
    OrderStatus.ASSIGNED: ("1", "in_progress"),
    OrderStatus.COMPLETED: ("2", "completed"),
    OrderStatus.CANCELLED: ("3", "cancelled"),
    OrderStatus.OFFERED: ("4", "offered"),
}
NOT_FOUND = schemas.problem(404, "No such order of this shop")


# Where a posted order's answer leads.
POSTED = schemas.links(
    read=("get_order", "sid", "order_sid"),
    complete=("complete_order", "sid", "order_sid"),
    cancel=("cancel_order", "sid", "order_sid"),
)
PAGE_DEFAULT, PAGE_LIMIT = 50, 200
CURSOR = r"^[0-9]{1,10}$"
_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")


def build_router(context: ApiContext) -> APIRouter:
    # A posted order is found again by its key: a retry after a crash answers from it.
    router = idempotency.shop_router(context, "orders", resumable=frozenset({"post_order"}))
    Uow = Annotated[UnitOfWork, Depends(context.uow)]

    @router.post(
        "/order",
        status_code=201,
        response_model=schemas.OrderAssigned,
        responses={
            201: {
                "model": schemas.OrderAssigned | schemas.OrderOffered,
                "description": 'Assigned, or offered ("4") with OFFER_SECONDS set',
            }
            | POSTED,
            202: {"model": schemas.OrderQueued, "description": 'Queued ("queue": true)'} | POSTED,
        }
        | schemas.problem(409, "No courier free; nothing stored")
        | schemas.invalid("Invalid input or unknown district"),
        dependencies=idempotency.KEYED,
    )
    async def post_order(
        body: schemas.OrderIn, uow: Uow, shop: ShopCalling, request: Request
    ) -> object:
        source = getattr(request.state, "source", None)
        try:
            order = await orders.post_order_for_shop(
                uow,
                shop,
                body.district,
                body.name,
                queue=body.queue,
                source=source,
                places=Places(_point(body.pickup), _point(body.dropoff)),
            )
        except Conflict as error:
            if error.code is not ErrorCode.ALREADY_POSTED:
                raise
            # Its first run posted it and died before answering: the answer is the order, as
            # it is now; cancelled since, it has none to give.
            order = await orders.order_status(uow, shop, UUID(error.params["sid"]))
            if order.courier_sid is None and order.queue_position is None:
                raise Conflict(ErrorCode.IDEMPOTENCY_ANSWER_LOST) from None
        if order.courier_sid is None:
            assert order.queue_position is not None
            queued = schemas.OrderQueued(
                order_sid=order.sid, status="0", place=order.queue_position
            )
            return JSONResponse(queued.model_dump(mode="json"), status_code=202)
        if order.status is OrderStatus.OFFERED:
            offered = schemas.OrderOffered(
                order_sid=order.sid, courier_sid=order.courier_sid, status="4"
            )
            return JSONResponse(offered.model_dump(mode="json"), status_code=201)
        return schemas.OrderAssigned(order_sid=order.sid, courier_sid=order.courier_sid)

    @router.get("/order")
    async def list_orders(
        uow: Uow,
        shop: ShopCalling,
        status: schemas.Status | None = None,
        district: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
        since: Annotated[
            datetime | None,
            BeforeValidator(_iso_8601),
            AfterValidator(_in_utc),
            Query(description="Created at or after."),
        ] = None,
        cursor: Annotated[
            str | None, Query(pattern=CURSOR, description="The next_cursor of the page before.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_DEFAULT,
    ) -> schemas.OrderPage:
        """The shop's orders, oldest first, as filtered; a page at a time."""
        wanted = OrderFilter(_status(status), district, since)
        page = await orders.shop_orders(uow, shop, wanted, _after(cursor), limit)
        return schemas.OrderPage(
            items=[_order(order) for order in page.items],
            next_cursor=str(page.last_id) if page.last_id is not None else None,
        )

    @router.get("/order/{sid}", responses=NOT_FOUND)
    async def get_order(sid: UUID, uow: Uow, shop: ShopCalling) -> schemas.Order:
        return _order(await orders.order_status(uow, shop, sid))

    @router.post(
        "/order/{sid}/cancel",
        responses=NOT_FOUND | schemas.problem(409, "Completed or cancelled already"),
        dependencies=idempotency.KEYED,
    )
    async def cancel_order(sid: UUID, uow: Uow, shop: ShopCalling) -> schemas.Order:
        """Cancel a queued or assigned order; its courier is told and freed."""
        return _order(await orders.cancel_order(uow, shop, sid))

    @router.post(
        "/order/{sid}",
        responses=NOT_FOUND | schemas.problem(409, "Completed, cancelled or waiting"),
        dependencies=idempotency.KEYED,
    )
    async def complete_order(sid: UUID, uow: Uow, shop: ShopCalling) -> schemas.Order:
        return _order((await orders.complete_order(uow, shop, sid)).order)

    return router


def _order(order: OrderView) -> schemas.Order:
    status, state = STATUS[order.status]
    return schemas.Order(
        sid=order.sid,
        name=order.description,
        district=order.district,
        courier_sid=order.courier_sid,
        status=status,
        state=state,
        created_at=order.created_at,
        assigned_at=order.assigned_at,
        completed_at=order.completed_at,
        cancelled_at=order.cancelled_at,
        pickup=_place(order.pickup),
        dropoff=_place(order.dropoff),
    )


def _point(place: schemas.PlaceIn | None) -> Point | None:
    return None if place is None else Point(place.lat, place.lon, place.address)


def _place(point: Point | None) -> schemas.Place | None:
    return None if point is None else schemas.Place(**asdict(point))


def _iso_8601(value: object) -> object:
    """A date and time as text (2026-12-03T10:00:00Z), never a number of seconds."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("give a date and time, such as 2026-12-03T10:00:00Z")
    return value


def _status(code: schemas.Status | None) -> OrderStatus | None:
    return None if code is None else next(s for s, (c, _) in STATUS.items() if c == code)


def _in_utc(moment: datetime | None) -> datetime | None:
    """The time in UTC (one without an offset is taken as UTC); 422 for one that UTC cannot
    hold (0001-01-01T00:00:00+01:00)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range in UTC") from None


def _after(cursor: str | None) -> int:
    """The order a cursor says to start after (0: from the first)."""
    return min(int(cursor), MAX_ID) if cursor else 0


def snapshot_order(snapshot: dict[str, object]) -> schemas.Order:
    """An order as a webhook event recorded it, as GET /order/{sid} would have shown it."""
    status, state = STATUS[OrderStatus(str(snapshot["status"]))]
    return schemas.Order.model_validate(
        {key: snapshot[key] for key in schemas.Order.model_fields if key in snapshot}
        | {"status": status, "state": state}
    )
