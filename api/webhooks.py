"""/webhooks: where a shop hears of its orders' changes, signed by the Standard Webhooks spec.

Each event is POSTed as `{"type", "timestamp", "data"}`, `data` being the order as
GET /order/{sid} shows it, with the headers webhook-id, webhook-timestamp and
webhook-signature. A receiver answers 2xx within 10 s; anything else is tried again.
"""

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from api import idempotency, schemas
from api.context import ApiContext, ShopCalling
from api.orders import snapshot_order
from db.uow import UnitOfWork
from services import webhooks
from services.read_models import WebhookCall, WebhookView

NOT_FOUND = schemas.problem(404, "No such webhook endpoint of this shop")


def build_router(context: ApiContext) -> APIRouter:
    router = idempotency.shop_router(context, "webhooks")
    Uow = Annotated[UnitOfWork, Depends(context.uow)]

    @router.post(
        "/webhooks",
        status_code=201,
        responses=schemas.invalid("Not an http(s) URL on the internet, or unknown events")
        | schemas.problem(409, f"The shop has {webhooks.ENDPOINTS_MAX} endpoints already")
        | {
            201: schemas.links(
                deliveries=("deliveries", "id", "id"), delete=("delete_webhook", "id", "id")
            )
        },
        dependencies=idempotency.KEYED,
    )
    async def add_webhook(
        body: schemas.WebhookIn, uow: Uow, shop: ShopCalling
    ) -> schemas.WebhookCreated:
        """Register an endpoint. Its signing secret is in this answer only: keep it."""
        made = await webhooks.register(
            uow, shop, body.url, body.events, allow_private=context.allow_private_webhooks
        )
        assert made.secret is not None
        return schemas.WebhookCreated(**_webhook(made).model_dump(), secret=made.secret)

    @router.get("/webhooks")
    async def list_webhooks(uow: Uow, shop: ShopCalling) -> list[schemas.Webhook]:
        return [_webhook(endpoint) for endpoint in await webhooks.endpoints(uow, shop)]

    @router.delete("/webhooks/{id}", status_code=204, responses=NOT_FOUND)
    async def delete_webhook(id: UUID, uow: Uow, shop: ShopCalling) -> Response:
        """The endpoint gets nothing more, not even what it was still to get."""
        await webhooks.delete(uow, shop, id)
        return Response(status_code=204)

    @router.get("/webhooks/{id}/deliveries", responses=NOT_FOUND)
    async def deliveries(id: UUID, uow: Uow, shop: ShopCalling) -> list[schemas.WebhookCall]:
        """The endpoint's latest 100 deliveries, newest first, and how each went."""
        return [_call(call) for call in await webhooks.calls(uow, shop, id)]

    return router


def body(event: str, snapshot: dict[str, object]) -> bytes:
    """What a delivery POSTs: the event, when it happened, and the order as it was then."""
    data = snapshot_order(snapshot).model_dump(mode="json")
    message = {"type": event, "timestamp": snapshot["at"], "data": data}
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def _webhook(endpoint: WebhookView) -> schemas.Webhook:
    return schemas.Webhook(
        id=endpoint.sid,
        url=endpoint.url,
        events=list(endpoint.events) if endpoint.events is not None else None,
        created_at=endpoint.created_at,
        failing_since=endpoint.failing_since,
        disabled_at=endpoint.disabled_at,
    )


def _call(call: WebhookCall) -> schemas.WebhookCall:
    return schemas.WebhookCall(
        id=call.message_id,
        event=call.event,
        order_sid=UUID(call.order_sid),
        state=call.state,
        attempts=call.attempts,
        created_at=call.created_at,
        next_attempt_at=call.next_attempt_at,
        sent_at=call.sent_at,
        last_status=call.last_status,
        last_error=call.last_error,
    )
