"""Delivering shops' webhooks: each endpoint's events in order, one at a time, signed by the
Standard Webhooks spec; a failure is tried again later (services.webhooks has the rules).

A delivery's lease outlasts its request, so no other instance sends it meanwhile. A process
killed after the call and before its outcome is written sends it again after the lease:
with the same webhook-id, which is what receivers dedupe by.
"""

import asyncio
import base64
import hashlib
import hmac
import logging
import socket
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from api.webhooks import body
from bot.metrics import Metrics
from bot.telegram.lanes import Doorbell
from db.uow import UnitOfWorkFactory
from services import clock, webhook_targets, webhooks
from services.webhooks import Job, Outcome, RetryPolicy

log = logging.getLogger(__name__)
USER_AGENT = "courier-dispatch-webhooks/1"
PRIVATE = "{host} is or resolves to a private address; webhooks go to the internet"


@dataclass(frozen=True)
class WebhookSettings:
    allow_private: bool = False  # SHOP_WEBHOOKS_ALLOW_PRIVATE: for development and tests
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    request_seconds: float = 10.0
    lease: timedelta = timedelta(seconds=60)  # longer than a request, with room to record it
    record_seconds: float = 5.0  # kept of a lease to write a batch's outcomes
    endpoints_at_once: int = 64  # a few receivers that hang hold up nobody else
    per_endpoint: int = 20  # deliveries an endpoint is sent in a row, recorded at once
    idle_seconds: float = 1.0  # how often to look for deliveries due, unless woken


def sign(secret: str, message_id: str, timestamp: int, payload: bytes) -> str:
    """The webhook-signature header: HMAC-SHA256 of `id.timestamp.body`, in base64."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + payload
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class PublicResolver(AbstractResolver):
    """DNS that refuses a host with any private address: checked as the connection is made,
    so a name that resolved to the internet at registration cannot point inside later."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if any(_private(result["host"]) for result in found):
            raise PrivateAddress(PRIVATE.format(host=host))
        return found

    async def close(self) -> None:
        await self._inner.close()


class PrivateAddress(OSError):
    """A webhook's host resolved to an address that is not on the internet."""


def _private(host: str) -> bool:
    """A resolved address: what is not one is refused too."""
    return webhook_targets.literal(host) is None or webhook_targets.refused(host)


class WebhookSender:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        settings: WebhookSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.settings = settings
        self.metrics = metrics
        self.owner = f"webhooks-{uuid.uuid4().hex[:12]}"
        self._bell = Doorbell()  # rung by commits that wrote deliveries, and by ends of batches
        self._sending: dict[int, asyncio.Task[None]] = {}  # by endpoint
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        uow_factory.on_events(self._bell.ring)

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=None if self.settings.allow_private else PublicResolver(), limit=100
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.request_seconds),
            headers={"User-Agent": USER_AGENT},
        )
        try:
            while True:
                await self._round()
        finally:
            await self._http.close()

    async def _round(self) -> None:
        room = self.settings.endpoints_at_once - len(self._sending)
        jobs: list[Job] = []
        if room > 0 and not self._stopping:
            try:
                jobs = await webhooks.claim(
                    self.uow_factory(),
                    self.owner,
                    endpoints=room,
                    per_endpoint=self.settings.per_endpoint,
                    lease=self.settings.lease,
                    busy=set(self._sending),
                )
            except Exception as error:  # the database is away: look again in a while
                log.warning("could not claim webhook deliveries: %r", error)
        by_endpoint: dict[int, list[Job]] = {}
        for job in jobs:
            by_endpoint.setdefault(job.endpoint_id, []).append(job)
        for endpoint_id, queue in by_endpoint.items():
            task = asyncio.create_task(self._deliver(queue), name=f"webhooks-{endpoint_id}")
            self._sending[endpoint_id] = task
            task.add_done_callback(partial(self._done, endpoint_id))
        if not by_endpoint or room <= len(by_endpoint):
            await self._bell.wait(self.settings.idle_seconds)

    def _done(self, endpoint_id: int, _task: object) -> None:
        self._sending.pop(endpoint_id, None)
        self._bell.ring()  # its endpoint's next delivery may go

    async def _deliver(self, queue: list[Job]) -> None:
        """An endpoint's deliveries in order, up to the first that fails; then what became
        of them, in one transaction. It stops early, leaving the rest to be claimed again,
        when the bot stops, when the lease could run out before the outcomes are written
        (so no other instance sends them meanwhile), or when a delivery is no longer this
        sender's (its endpoint deleted or disabled)."""
        settings = self.settings
        room = settings.lease.total_seconds() - settings.request_seconds - settings.record_seconds
        deadline = time.monotonic() + room
        outcomes: list[Outcome] = []
        for job in queue:
            # The time is looked at last, right before the send: the look-up may have waited.
            if self._stopping or not await self._ours(job) or time.monotonic() > deadline:
                break
            outcomes.append(outcome := await self._post(job))
            if self.metrics is not None:
                kind = "delivered" if outcome.delivered else "failed"
                self.metrics.webhook_calls.labels(kind).inc()
            if not outcome.delivered:
                log.info(
                    "webhook %s (%s) to endpoint %s failed: %s",
                    job.message_id,
                    job.event,
                    job.endpoint_id,
                    outcome.error,
                )
                break
        untried = [job.id for job in queue[len(outcomes) :]]
        try:
            retry_at = await webhooks.record(
                self.uow_factory(), self.owner, outcomes, self.settings.policy, untried
            )
        except Exception as error:  # the leases run out, and they go again, with their ids
            log.warning("could not record webhooks to endpoint %s: %r", queue[0].endpoint_id, error)
            return
        if retry_at is not None:  # look again when it is due, not at the next idle round
            delay = (retry_at - clock.utcnow()).total_seconds()
            asyncio.get_running_loop().call_later(max(0.0, delay), self._bell.ring)

    async def _ours(self, job: Job) -> bool:
        try:
            return await webhooks.still_held(self.uow_factory(), self.owner, job.id)
        except Exception as error:  # the database is away: the lease runs out, and it goes
            log.warning("could not look at webhook %s: %r", job.message_id, error)
            return False

    async def _post(self, job: Job) -> Outcome:
        assert self._http is not None
        payload = body(job.event, job.snapshot)
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": job.message_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(job.secret, job.message_id, now, payload),
        }
        host = urlsplit(job.url).hostname or ""
        if not self.settings.allow_private and webhook_targets.refused(host):
            return Outcome(job, None, PRIVATE.format(host=host))  # no resolver is asked
        try:
            async with self._http.post(
                job.url, data=payload, headers=headers, allow_redirects=False
            ) as response:
                # Its body is never read: only the status counts, whatever a receiver sends.
                if 200 <= response.status < 300:
                    return Outcome(job, response.status, None)
                return Outcome(job, response.status, f"answered {response.status}")
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            return Outcome(job, None, _reason(error))

    async def stop(self, seconds: float) -> None:
        """Let the deliveries in flight end within `seconds`; give back the rest's leases."""
        self._stopping = True
        pending = list(self._sending.values())
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, seconds))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        with suppress(Exception):
            await webhooks.give_back(self.uow_factory(), self.owner)


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    cause = getattr(error, "os_error", None)  # aiohttp's wrapper of a failed connection
    if isinstance(cause, PrivateAddress):
        return str(cause)
    return f"{type(error).__name__}: {error}"[:500]
