"""Shops' webhooks: endpoints a shop registers, and the delivery of its orders' changes to
them, in order per endpoint, retried with growing pauses (the sender is bot.shops.webhooks).

Each change of a shop's order becomes a delivery row per endpoint in the transaction that
made it (db.uow), so no change is lost and none is reported that did not happen. A delivery
may reach a receiver twice (its answer lost, or the process killed after the call): the
`webhook-id` header is the same each time, for the receiver to drop the copy.
"""

import base64
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from db.models import WebhookDelivery, WebhookEndpoint, WebhookState
from db.uow import UnitOfWork
from services import clock, pruning, webhook_targets
from services.access import Shop
from services.errors import Conflict, ErrorCode, NotFound
from services.read_models import WebhookCall, WebhookView

EVENTS = (
    "order.offered",
    "order.assigned",
    "order.completed",
    "order.cancelled",
    "order.requeued",
)
ENDPOINTS_MAX = 10  # a shop's endpoints
LOG_MAX = 100  # deliveries shown per endpoint


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_pause: timedelta = timedelta(seconds=5)
    longest_pause: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)  # a delivery, since its event
    disable_after: timedelta = timedelta(days=3)  # an endpoint failing without a break

    def pause(self, attempts: int) -> timedelta:
        """Before the next try, after `attempts` failed ones: doubling, up to the longest."""
        pause: timedelta = self.first_pause * 2 ** min(attempts - 1, 30)
        return min(pause, self.longest_pause)


async def register(
    uow: UnitOfWork, shop: Shop, url: str, events: Collection[str] | None, *, allow_private: bool
) -> WebhookView:
    """A new endpoint of the shop; its signing secret is in this answer only."""
    await webhook_targets.check(url, allow_private=allow_private)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    kinds = sorted(set(events), key=EVENTS.index) if events is not None else None
    async with uow.write():
        await uow.shops.lock(shop.id)  # two registrations at once count one after the other
        if len(await uow.webhooks.endpoints_of(shop.id)) >= ENDPOINTS_MAX:
            raise Conflict(ErrorCode.WEBHOOK_TOO_MANY, most=ENDPOINTS_MAX)
        endpoint = await uow.webhooks.add_endpoint(shop.id, url, kinds, secret, clock.utcnow())
        view = _view(endpoint, secret=secret)
        await uow.commit()
    return view


async def endpoints(uow: UnitOfWork, shop: Shop) -> list[WebhookView]:
    async with uow.read():
        return [_view(endpoint) for endpoint in await uow.webhooks.endpoints_of(shop.id)]


async def delete(uow: UnitOfWork, shop: Shop, sid: UUID) -> None:
    """The endpoint receives nothing more; what it had still to receive is given up."""
    async with uow.write():
        endpoint = await _endpoint(uow, shop, sid)
        await uow.webhooks.stop_endpoint(endpoint.id, clock.utcnow(), deleted=True)
        await uow.commit()


async def calls(uow: UnitOfWork, shop: Shop, sid: UUID) -> list[WebhookCall]:
    """The endpoint's latest deliveries, newest first."""
    async with uow.read():
        endpoint = await _endpoint(uow, shop, sid)
        rows = await uow.webhooks.deliveries_of(endpoint.id, LOG_MAX)
        return [_call(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Job:
    """A delivery a sender holds the lease on."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    message_id: str
    event: str
    snapshot: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    job: Job
    status: int | None  # the receiver's HTTP status; None when there was no answer
    error: str | None  # None: delivered

    @property
    def delivered(self) -> bool:
        return self.error is None


async def claim(
    uow: UnitOfWork,
    owner: str,
    *,
    endpoints: int,
    per_endpoint: int = 1,
    lease: timedelta,
    busy: Collection[int],
) -> list[Job]:
    """Lease to `owner` the next deliveries (up to `per_endpoint`, in order) of up to
    `endpoints` endpoints not in `busy`."""
    now = clock.utcnow()
    async with uow.write():
        rows = await uow.webhooks.queue.claim(
            now, now + lease, owner, chats=endpoints, per_chat=per_endpoint, busy=busy
        )
        targets = await uow.webhooks.endpoints_by_id([row.endpoint_id for row in rows])
        await uow.commit()
    return [
        Job(
            row.id,
            row.endpoint_id,
            targets[row.endpoint_id].url,
            targets[row.endpoint_id].secret,
            row.message_id,
            row.event,
            row.snapshot,
            row.attempts,
            row.created_at,
        )
        for row in rows
    ]


async def still_held(uow: UnitOfWork, owner: str, delivery_id: int) -> bool:
    """Whether the delivery still waits, leased to `owner`: not given up (its endpoint
    deleted or disabled) nor taken by another sender."""
    async with uow.read():
        held = await uow.webhooks.held(owner, [delivery_id])
        return held.get(delivery_id) is WebhookState.PENDING


async def record(
    uow: UnitOfWork,
    owner: str,
    outcomes: Sequence[Outcome],
    policy: RetryPolicy,
    untried: Collection[int] = (),
) -> datetime | None:
    """What became of an endpoint's deliveries, tried in order: each sent; or tried again
    later (when, is returned); or, past the policy's window, given up. The `untried` ones,
    behind a failure, are given back as they were. An endpoint failing for longer than
    `disable_after` is disabled, and its shop is told on its next API call. Rows whose lease
    another sender has taken since are theirs, and left alone."""
    if not outcomes:
        return None
    now = clock.utcnow()
    retry_at = None
    async with uow.write():
        held = await uow.webhooks.held(owner, [o.job.id for o in outcomes])
        # Another sender's now, or given up since (its endpoint deleted): only what did
        # arrive is written, so that the log says so.
        kept = [
            o
            for o in outcomes
            if o.job.id in held and (held[o.job.id] is WebhookState.PENDING or o.delivered)
        ]
        if not kept:
            return None
        changes = [_change(outcome, now, policy) for outcome in kept]
        retry_at = changes[-1]["next_attempt_at"]
        await uow.webhooks.queue.update_each(changes, owner)
        await uow.webhooks.queue.release(owner, untried)
        endpoint = await uow.webhooks.mark_health(
            kept[-1].job.endpoint_id,
            now,
            ok=kept[-1].delivered,
            new_run_before=now - policy.give_up_after,
        )
        if _worn_out(endpoint, now, policy):
            assert endpoint is not None
            await uow.webhooks.stop_endpoint(endpoint.id, now, deleted=False)
            await uow.shops.flag_endpoint_disabled(endpoint.shop_id)
            retry_at = None
        await uow.commit()
    return retry_at


def _change(outcome: Outcome, now: datetime, policy: RetryPolicy) -> dict[str, Any]:
    """A delivery's row after an attempt: sent, to be tried again, or given up."""
    job = outcome.job
    change: dict[str, Any] = {"id": job.id, "last_status": outcome.status}
    if outcome.delivered:
        change |= {"state": WebhookState.SENT, "sent_at": now, "last_error": None}
    elif now - job.created_at >= policy.give_up_after:
        change |= {"state": WebhookState.FAILED, "last_error": outcome.error}
    else:
        retry_at = now + policy.pause(job.attempts + 1)
        change |= {"next_attempt_at": retry_at, "last_error": outcome.error}
    return change | _unset(change)


_OUTCOME_COLUMNS = ("last_status", "state", "sent_at", "last_error", "next_attempt_at")


def _unset(change: dict[str, Any]) -> dict[str, Any]:
    """The outcome columns a change leaves as they were, for one statement to run them all:
    a row tried again stays pending, and one sent or given up keeps no next attempt."""
    kept = {"state": WebhookState.PENDING, "sent_at": None, "next_attempt_at": None}
    return {name: kept.get(name) for name in _OUTCOME_COLUMNS if name not in change}


async def give_back(uow: UnitOfWork, owner: str | None) -> int:
    async with uow.write():
        released = await uow.webhooks.queue.release(owner)
        await uow.commit()
    return released


async def prune(uow: UnitOfWork, older_than: timedelta) -> int:
    before = clock.utcnow() - older_than
    return await pruning.in_batches(uow, lambda limit: uow.webhooks.prune(before, limit))


def _worn_out(endpoint: WebhookEndpoint | None, now: datetime, policy: RetryPolicy) -> bool:
    return (
        endpoint is not None
        and endpoint.disabled_at is None
        and endpoint.failing_since is not None
        and now - endpoint.failing_since >= policy.disable_after
    )


async def _endpoint(uow: UnitOfWork, shop: Shop, sid: UUID) -> WebhookEndpoint:
    endpoint = await uow.webhooks.endpoint(shop.id, sid)
    if endpoint is None:
        raise NotFound(ErrorCode.WEBHOOK_NOT_FOUND)
    return endpoint


def _view(endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookView:
    return WebhookView(
        sid=endpoint.sid,
        url=endpoint.url,
        events=tuple(endpoint.events) if endpoint.events is not None else None,
        created_at=endpoint.created_at,
        failing_since=endpoint.failing_since,
        disabled_at=endpoint.disabled_at,
        secret=secret,
    )


def _call(row: WebhookDelivery) -> WebhookCall:
    return WebhookCall(
        message_id=row.message_id,
        event=row.event,
        order_sid=str(row.snapshot.get("sid", "")),
        state=row.state.value,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_status=row.last_status,
        last_error=row.last_error,
    )
