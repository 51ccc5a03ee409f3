"""Shops' webhook endpoints, and the deliveries of their orders' changes to them."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, case, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Courier,
    District,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookState,
)
from db.repositories.base import Repository, in_state, table
from db.repositories.leases import LeasedQueue
from db.repositories.orders import OrderChange

EVENT_PREFIX = "order."
_ENDPOINTS = table(WebhookEndpoint)
# The endpoints that hear of these shops' orders.
_LISTENING = select(_ENDPOINTS.c.id, _ENDPOINTS.c.shop_id, _ENDPOINTS.c.events).where(
    _ENDPOINTS.c.shop_id.in_(bindparam("shops", expanding=True)),
    _ENDPOINTS.c.deleted_at.is_(None),
    _ENDPOINTS.c.disabled_at.is_(None),
)


def _pending() -> Any:
    return in_state(WebhookDelivery.state, WebhookState.PENDING)


class WebhookRepository(Repository):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.queue = LeasedQueue(session, WebhookDelivery)

    async def add_endpoint(
        self, shop_id: int, url: str, events: list[str] | None, secret: str, now: datetime
    ) -> WebhookEndpoint:
        endpoint = WebhookEndpoint(
            shop_id=shop_id, url=url, events=events, secret=secret, created_at=now
        )
        self.session.add(endpoint)
        await self.session.flush()
        return endpoint

    async def endpoints_of(self, shop_id: int) -> list[WebhookEndpoint]:
        statement = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.shop_id == shop_id, WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
        return list(await self.session.scalars(statement))

    async def endpoint(self, shop_id: int, sid: UUID) -> WebhookEndpoint | None:
        statement = select(WebhookEndpoint).where(
            WebhookEndpoint.sid == sid,
            WebhookEndpoint.shop_id == shop_id,
            WebhookEndpoint.deleted_at.is_(None),
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def endpoints_by_id(self, ids: Sequence[int]) -> dict[int, WebhookEndpoint]:
        return await self._by_ids(WebhookEndpoint, ids)

    async def stop_endpoint(self, endpoint_id: int, now: datetime, *, deleted: bool) -> None:
        """Delete or disable an endpoint; what it still had to receive is given up. A sender
        sending some of it keeps its lease, to write down what did arrive."""
        column = "deleted_at" if deleted else "disabled_at"
        await self.session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values({column: now})
        )
        reason = "the endpoint was deleted" if deleted else "the endpoint was disabled"
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, _pending())
            .values(state=WebhookState.FAILED, last_error=reason)
        )

    async def held(self, owner: str, delivery_ids: Sequence[int]) -> dict[int, WebhookState]:
        """The states of those of these deliveries that `owner` holds the lease on."""
        rows = await self.session.execute(
            select(WebhookDelivery.id, WebhookDelivery.state).where(
                WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.claimed_by == owner
            )
        )
        return {row[0]: WebhookState(row[1]) for row in rows}

    async def mark_health(
        self, endpoint_id: int, now: datetime, *, ok: bool, new_run_before: datetime
    ) -> WebhookEndpoint | None:
        """Record a delivery's outcome on its endpoint: since when it has been failing. A
        failure after none since `new_run_before` starts a new run of failures."""
        endpoint = WebhookEndpoint
        if ok:
            values: dict[str, Any] = {"failing_since": None}
        else:
            new_run = or_(
                endpoint.failing_since.is_(None), endpoint.last_failed_at < new_run_before
            )
            values = {
                "failing_since": case((new_run, now), else_=endpoint.failing_since),
                "last_failed_at": now,
            }
        statement = (
            update(endpoint)
            .where(endpoint.id == endpoint_id)
            .values(values)
            .returning(endpoint)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def write_events(self, changes: Sequence[OrderChange]) -> int:
        """A delivery row for each change of a shop's order and each endpoint of that shop
        that takes its event; how many. Run at commit, in the change's transaction."""
        if not changes:
            return 0
        shops = list({change.order["shop_id"] for change in changes})
        # A Core statement built once: every order posted over HTTP runs it.
        endpoints = (await self.session.execute(_LISTENING, {"shops": shops})).all()
        if not endpoints:
            return 0
        names = await self._names(changes)
        rows = [
            _delivery(endpoint_id, change, names)
            for change in changes
            for endpoint_id, shop_id, events in endpoints
            if shop_id == change.order["shop_id"]
            and (events is None or EVENT_PREFIX + change.event in events)
        ]
        if rows:
            await self.session.execute(insert(table(WebhookDelivery)), rows)
        return len(rows)

    async def _names(self, changes: Sequence[OrderChange]) -> dict[str, dict[int, Any]]:
        """The districts' names and the couriers' public ids the orders refer to."""
        district_ids = {c.order["district_id"] for c in changes}
        courier_ids = {c.order["courier_id"] for c in changes} - {None}
        districts = await self.session.execute(
            select(District.id, District.name).where(District.id.in_(district_ids))
        )
        couriers = await self.session.execute(
            select(Courier.id, Courier.sid).where(Courier.id.in_(courier_ids))
        )
        return {
            "district": {row[0]: row[1] for row in districts},
            "courier": {row[0]: row[1] for row in couriers},
        }

    async def deliveries_of(self, endpoint_id: int, limit: int) -> list[WebhookDelivery]:
        """The endpoint's latest deliveries, newest first."""
        statement = (
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` sent or failed deliveries created before `before`."""
        doomed = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.created_at < before, ~_pending())
            .limit(limit)
        )
        result = await self.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(doomed))
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _delivery(
    endpoint_id: int, change: OrderChange, names: dict[str, dict[int, Any]]
) -> dict[str, Any]:
    order = change.order
    courier_sid = names["courier"].get(order["courier_id"])
    snapshot = {
        "sid": str(order["sid"]),
        "name": order["description"],
        "district": names["district"].get(order["district_id"], ""),
        "courier_sid": str(courier_sid) if courier_sid else None,
        "status": str(order["status"]),
        "at": change.at.isoformat(),
        **{
            key: order[key].isoformat() if order[key] else None
            for key in ("created_at", "assigned_at", "completed_at", "cancelled_at")
        },
        **{point: _place(order, point) for point in ("pickup", "dropoff")},
    }
    return {
        "endpoint_id": endpoint_id,
        "message_id": f"msg_{uuid.uuid4().hex}",
        "event": EVENT_PREFIX + change.event,
        "order_id": order["id"],
        "snapshot": snapshot,
        "created_at": change.at,
        "state": WebhookState.PENDING,
        "attempts": 0,
    }


def _place(order: dict[str, Any], point: str) -> dict[str, Any] | None:
    """A point of the order as the API shows it, or None."""
    lat, lon = order[f"{point}_lat"], order[f"{point}_lon"]
    if lat is None or lon is None:
        return None
    return {"lat": lat, "lon": lon, "address": order[f"{point}_address"]}
