"""/courier: create, list and read couriers; /courier/create_district and get_districts."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api import idempotency, schemas
from api.context import ApiContext, ShopCalling
from db.uow import UnitOfWork
from services import clock, couriers, districts
from services.read_models import CourierCard, CourierView, NewCourier, PositionView
from services.validation import PAGE_MAX

NOT_FOUND = schemas.problem(404, "No such courier")
BAD_INPUT = schemas.invalid("Invalid input or unknown districts")
DUPLICATE = schemas.problem(409, "A district of that name exists")


def build_router(context: ApiContext) -> APIRouter:
    router = idempotency.shop_router(context, "couriers and districts")
    Uow = Annotated[UnitOfWork, Depends(context.uow)]

    # Before /courier/{sid}, so that these names are never taken for a courier's id.
    @router.post(
        "/courier/create_district",
        status_code=201,
        responses=BAD_INPUT | DUPLICATE,
        dependencies=idempotency.KEYED,
    )
    async def create_district(
        body: schemas.DistrictIn, uow: Uow, shop: ShopCalling
    ) -> schemas.District:
        district = await districts.add_district(uow, shop, body.name)
        assert district.sid is not None
        return schemas.District(sid=district.sid, name=district.name)

    @router.get("/courier/get_districts")
    async def get_districts(uow: Uow, shop: ShopCalling) -> list[schemas.District]:
        return [
            schemas.District(sid=d.sid, name=d.name)
            for d in await districts.list_districts(uow)
            if d.sid is not None
        ]

    @router.post(
        "/courier",
        status_code=201,
        responses=BAD_INPUT
        | {
            201: schemas.links(
                card=("courier_card", "sid", "sid"), relink=("reissue_link", "sid", "sid")
            )
        },
        dependencies=idempotency.KEYED,
    )
    async def create_courier(
        body: schemas.CourierIn, uow: Uow, shop: ShopCalling
    ) -> schemas.CourierCreated:
        created = await couriers.create_courier(uow, shop, body.name, body.districts)
        return schemas.CourierCreated(
            **_brief(created.courier),
            districts=list(created.courier.districts),
            telegram_link=_link(created),
        )

    def _link(made: NewCourier) -> str:
        return f"https://t.me/{context.bot_username}?start={made.link_token}"

    @router.get("/courier")
    async def list_couriers(
        uow: Uow,
        shop: ShopCalling,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_MAX,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> list[schemas.CourierBrief]:
        page = await couriers.list_couriers(uow, shop, offset, limit)
        return [schemas.CourierBrief(**_brief(c)) for c in page.items]

    @router.post(
        "/courier/{sid}/telegram_link",
        responses=NOT_FOUND | schemas.problem(409, "The courier has connected their Telegram"),
        dependencies=idempotency.KEYED,
    )
    async def reissue_link(sid: UUID, uow: Uow, shop: ShopCalling) -> schemas.CourierLink:
        """A new one-time link that connects the courier's Telegram; the old ones stop working."""
        reissued = await couriers.reissue_link(uow, shop, sid)
        return schemas.CourierLink(sid=reissued.courier.sid, telegram_link=_link(reissued))

    @router.get("/courier/{sid}", responses=NOT_FOUND)
    async def courier_card(sid: UUID, uow: Uow, shop: ShopCalling) -> schemas.CourierCard:
        return _card(await couriers.courier_card(uow, shop, sid, context.zone))

    return router


def _brief(courier: CourierView) -> dict[str, object]:
    return {"sid": courier.sid, "name": courier.name}


def _card(card: CourierCard) -> schemas.CourierCard:
    order = card.active_order
    return schemas.CourierCard(
        **_brief(card.courier),
        districts=list(card.courier.districts),
        active_order=schemas.ActiveOrder(
            sid=order.sid,
            name=order.description,
            district=order.district,
            assigned_at=order.assigned_at,
        )
        if order is not None and order.assigned_at is not None
        else None,
        avg_order_complete_time=card.average_delivery,
        avg_day_orders=card.average_per_day,
        acceptance_rate=card.acceptance.rate if card.acceptance else None,
        location=_location(card.position),
    )


def _location(position: PositionView | None) -> schemas.Location | None:
    """Where the courier was, while that still counts."""
    if position is None or not position.fresh(clock.utcnow()):
        return None
    return schemas.Location(lat=position.lat, lon=position.lon, at=position.at)
