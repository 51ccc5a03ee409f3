"""Prometheus metrics, in a registry of their own, served at GET /metrics.

Counted in this process: updates by type and outcome, how long they took, failed calls to
Telegram, and calls to shops' webhooks. Read from the database at each scrape (so every
instance shows the same): orders by state and the notifications waiting to be sent.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update
from fastapi import APIRouter
from fastapi import Response as HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from db.models import OfferOutcome
from db.repositories.offers import Decided
from db.uow import UnitOfWorkFactory
from services import monitoring
from services.errors import DomainError

log = logging.getLogger(__name__)
SNAPSHOT_TIMEOUT_SECONDS = 5.0
# Telegram's errors by the HTTP status (or kind) they stand for; the first match counts.
ERROR_CODES: tuple[tuple[type[Exception], str], ...] = (
    (TelegramRetryAfter, "429"),
    (TelegramServerError, "5xx"),
    (TelegramNetworkError, "network"),
    (TelegramUnauthorizedError, "401"),
    (TelegramForbiddenError, "403"),
    (TelegramNotFound, "404"),
    (TelegramConflictError, "409"),
    (TelegramEntityTooLarge, "413"),
    (TelegramBadRequest, "400"),
    (TelegramAPIError, "other"),
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "dispatch_updates",
            "Telegram updates handled, by type and outcome (handled, ignored, refused, failed)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "dispatch_update_seconds",
            "How long an update took to handle, by type",
            ["type"],
            registry=self.registry,
        )
        self.telegram_errors = Counter(
            "dispatch_telegram_errors",
            "Calls to the Bot API that failed, by method and code",
            ["method", "code"],
            registry=self.registry,
        )
        self.webhook_calls = Counter(
            "dispatch_webhook_calls",
            "Calls to shops' webhook endpoints, by outcome (delivered, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.offers = Counter(
            "dispatch_offers",
            "Offers decided, by outcome (accepted, declined, expired, withdrawn)",
            ["outcome"],
            registry=self.registry,
        )
        self.accept_seconds = Histogram(
            "dispatch_offer_accept_seconds",
            "How long couriers took to accept the orders offered to them",
            buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300),
            registry=self.registry,
        )
        self.positions = Counter(
            "dispatch_positions",
            "Live location edits taken, by outcome (written, failed); each batch is one write",
            ["outcome"],
            registry=self.registry,
        )
        self.position_batches = Counter(
            "dispatch_position_batches",
            "Batches of live location edits written",
            registry=self.registry,
        )
        self.database = DatabaseGauges()
        self.registry.register(self.database)

    def count_offers(self, decided: Sequence[Decided]) -> None:
        """UnitOfWorkFactory.on_offers: the offers a commit decided."""
        for offer in decided:
            self.offers.labels(offer.outcome.value).inc()
            if offer.outcome is OfferOutcome.ACCEPTED:
                self.accept_seconds.observe(offer.seconds)

    def count_positions(self, fixes: int, written: bool) -> None:
        """Live location edits written in one batch, or that failed (sent again, but for
        one no database takes)."""
        self.positions.labels("written" if written else "failed").inc(fixes)
        if written:
            self.position_batches.inc()

    def render(self) -> bytes:
        """The Prometheus text of every metric."""
        return generate_latest(self.registry)


class DatabaseGauges(Collector):
    """Orders by state and the outbox backlog, as of the last snapshot; nothing without one
    (the database did not answer), rather than stale numbers."""

    def __init__(self) -> None:
        self.snapshot: monitoring.Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        if snapshot is None:
            return
        orders = GaugeMetricFamily(
            "dispatch_orders",
            "Orders waiting (queued), offered and in progress (assigned)",
            labels=["state"],
        )
        for state, count in snapshot.orders.items():
            orders.add_metric([state.value], count)
        yield orders
        yield GaugeMetricFamily(
            "dispatch_outbox_backlog",
            "Notifications waiting to be sent",
            value=snapshot.outbox_waiting,
        )
        yield GaugeMetricFamily(
            "dispatch_outbox_oldest_seconds",
            "How long the oldest notification waiting to be sent has waited",
            value=snapshot.outbox_oldest_seconds,
        )


class CountUpdates(BaseMiddleware):
    """An outer update middleware: each update's type, outcome and time. Inside aiogram's
    error handling, so it sees the exceptions the error router then answers."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        kind = event.event_type
        outcome = "failed"
        started = time.perf_counter()
        try:
            result = await handler(event, data)
            outcome = "ignored" if result is UNHANDLED else "handled"
            return result
        except DomainError:
            outcome = "refused"
            raise
        finally:
            self.metrics.update_seconds.labels(kind).observe(time.perf_counter() - started)
            self.metrics.updates.labels(kind, outcome).inc()


class CountTelegramErrors(BaseRequestMiddleware):
    """On a Bot's session: every failed call to Telegram, each attempt counted."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramAPIError as error:
            code = next(label for kind, label in ERROR_CODES if isinstance(error, kind))
            self.metrics.telegram_errors.labels(method.__api_method__, code).inc()
            raise


def build_router(metrics: Metrics, uow_factory: UnitOfWorkFactory) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def serve_metrics() -> HttpResponse:
        metrics.database.snapshot = await _snapshot(uow_factory)
        return HttpResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _snapshot(uow_factory: UnitOfWorkFactory) -> monitoring.Snapshot | None:
    try:
        async with asyncio.timeout(SNAPSHOT_TIMEOUT_SECONDS):
            return await monitoring.snapshot(uow_factory())
    except Exception as error:  # any failure: serve the counters without the database's numbers
        log.warning("metrics without the database's numbers: %r", error)
        return None
