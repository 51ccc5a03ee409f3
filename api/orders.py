"""/order: post, read and complete orders."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api import idempotency, schemas
from api.context import ApiContext
from db.uow import UnitOfWork
from services import orders
from services.access import Shop
from services.errors import Conflict, ErrorCode
from services.read_models import OrderStatus, OrderView

STATUS: dict[OrderStatus, tuple[schemas.Status, schemas.State]] = {
    OrderStatus.QUEUED: ("0", "queued"),
    OrderStatus.ASSIGNED: ("1", "in_progress"),
    OrderStatus.COMPLETED: ("2", "completed"),
    OrderStatus.CANCELLED: ("3", "cancelled"),
}
NOT_FOUND = schemas.problem(404, "No such order")


def build_router(context: ApiContext) -> APIRouter:
    router = APIRouter(
        tags=["orders"],
        responses=schemas.UNAUTHORIZED,
        # A posted order is found again by its key: a retry after a crash answers from it.
        route_class=idempotency.route_class(context, resumable=frozenset({"post_order"})),
    )
    Uow = Annotated[UnitOfWork, Depends(context.uow)]
    Caller = Annotated[Shop, Depends(context.shop())]

    @router.post(
        "/order",
        status_code=201,
        response_model=schemas.OrderAssigned,
        responses={202: {"model": schemas.OrderQueued, "description": 'Queued ("queue": true)'}}
        | schemas.problem(409, "No courier free; nothing stored")
        | schemas.invalid("Invalid input or unknown district"),
        dependencies=idempotency.KEYED,
    )
    async def post_order(body: schemas.OrderIn, uow: Uow, shop: Caller, request: Request) -> object:
        source = getattr(request.state, "source", None)
        try:
            order = await orders.post_order_for_shop(
                uow, shop, body.district, body.name, queue=body.queue, source=source
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
            queued = schemas.OrderQueued(order_sid=order.sid, place=order.queue_position)
            return JSONResponse(queued.model_dump(mode="json"), status_code=202)
        return schemas.OrderAssigned(order_sid=order.sid, courier_sid=order.courier_sid)

    @router.get("/order/{sid}", responses=NOT_FOUND)
    async def get_order(sid: UUID, uow: Uow, shop: Caller) -> schemas.Order:
        return _order(await orders.order_status(uow, shop, sid))

    @router.post(
        "/order/{sid}",
        responses=NOT_FOUND | schemas.problem(409, "Completed, cancelled or waiting"),
        dependencies=idempotency.KEYED,
    )
    async def complete_order(sid: UUID, uow: Uow, shop: Caller) -> schemas.Order:
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
    )
