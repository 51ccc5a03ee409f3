"""A concurrent dispatch workload and a checker that audits its history from the database."""

import asyncio
import contextlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from db.models import Courier, Order, OrderEvent, OutboxMessage, courier_districts
from db.repositories.couriers import CourierRepository
from db.repositories.offers import OfferRepository
from db.repositories.orders import OrderRepository
from db.uow import UnitOfWorkFactory
from services import couriers, offers, orders
from services.errors import DomainError
from services.read_models import CourierCard
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

UTC_ZONE = ZoneInfo("UTC")
RACY_READS = {
    CourierRepository: ["get", "by_telegram_id", "district_ids", "longest_free", "lock"],
    OrderRepository: ["get", "oldest_queued_for", "queued_in", "in_progress_for", "held_by"],
    OfferRepository: ["open_for", "refused_by", "due", "last_between"],
}
# The state an order's history leaves it in, and the events that may come next.
AFTER = {
    "created": "queued",
    "requeued": "queued",
    "declined": "queued",
    "expired": "queued",
}
ALLOWED = {
    "created": {None},
    "offered": {"created", "requeued", "declined", "expired"},
    "declined": {"offered"},
    "expired": {"offered"},
    "assigned": {"created", "requeued", "declined", "expired", "offered"},
    "requeued": {"assigned", "offered"},
    "completed": {"assigned"},
    "cancelled": {"created", "requeued", "declined", "expired", "assigned", "offered"},
}
WAITING = {"created", "requeued", "declined", "expired"}  # events after which an order waits
HELD = {"offered", "assigned"}


def open_race_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Yield to other tasks right after every read a write may depend on."""
    for cls, names in RACY_READS.items():
        for name in names:
            original = getattr(cls, name)

            async def yielding(self: Any, *args: Any, __read: Any = original, **kw: Any) -> Any:
                result = await __read(self, *args, **kw)
                await asyncio.sleep(0)
                return result

            monkeypatch.setattr(cls, name, yielding)


@dataclass
class Workload:
    districts: int = 10
    couriers: int = 60
    posts: int = 250
    completions: int = 130
    cancels: int = 50
    toggles: int = 70
    takebacks: int = 40  # orders sent back to the queue, by /reassign or /offline_courier
    blocks: int = 20  # a courier blocked and unblocked again
    # Over HTTP, when the workload has a shop's client: couriers without Telegram among the
    # others, orders posted, and orders completed.
    api: httpx.AsyncClient | None = None
    http_couriers: int = 10
    http_posts: int = 200
    http_completions: int = 100
    # With offers on: couriers who decline the offer they get (the others accept, when they
    # come to complete, or let it run out).
    declines: int = 60
    offers: bool = False
    seed: int = 20261128
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    _posts_left: int = 0
    _all_posted: asyncio.Event = field(default_factory=asyncio.Event)

    def scaled(self, share: float) -> "Workload":
        """The same mix of operations, `share` as many of each."""
        counts = ("posts", "completions", "cancels", "toggles", "takebacks", "blocks", "declines")
        counts += ("http_posts", "http_completions")
        return replace(
            self, **{name: max(1, round(getattr(self, name) * share)) for name in counts}
        )

    @property
    def operations(self) -> int:
        over_http = self.http_posts + self.http_completions if self.api else 0
        return (
            self.posts
            + self.completions
            + self.cancels
            + self.toggles
            + self.takebacks
            + self.blocks * 2
            + over_http
            + (self.declines if self.offers else 0)
        )

    async def prepare(self, desk: Desk) -> list[str]:
        await desk.staff_up()
        names = [f"D{n}" for n in range(self.districts)]
        ids = list((await desk.add_districts(*names)).values())
        rng = random.Random(self.seed)
        for telegram_id in range(1, self.couriers + 1):
            await desk.add_courier(telegram_id, rng.sample(ids, rng.randint(1, 3)))
        for n in range(self.http_couriers if self.api else 0):
            body = {"name": f"Shop courier {n}", "districts": rng.sample(names, 2)}
            assert (await self.api.post("/courier", json=body)).status_code == 201  # type: ignore[union-attr]
        return names

    async def run(self, desk: Desk, names: list[str]) -> None:
        rng = random.Random(self.seed)
        jobs = [self._post(desk, f"{rng.choice(names)} parcel {n}") for n in range(self.posts)]
        jobs += [self._complete(desk, self._courier(rng)) for _ in range(self.completions)]
        jobs += [self._cancel(desk, rng.randint(1, self.posts)) for _ in range(self.cancels)]
        jobs += [
            self._toggle(desk, self._courier(rng), rng.random() < 0.5) for _ in range(self.toggles)
        ]
        jobs += [
            self._send_back(desk, rng.randint(1, self.posts))
            if n % 2
            else self._take_off_shift(desk, self._courier(rng))
            for n in range(self.takebacks)
        ]
        jobs += [self._block_for_a_while(desk, self._courier(rng)) for _ in range(self.blocks)]
        if self.api is not None:
            jobs += [
                self._http_post(self.api, rng.choice(names), n) for n in range(self.http_posts)
            ]
            jobs += [self._http_complete(self.api, rng) for _ in range(self.http_completions)]
        if self.offers:
            jobs += [self._decline(desk, self._courier(rng)) for _ in range(self.declines)]
        rng.shuffle(jobs)
        self._posts_left = self.posts + (self.http_posts if self.api else 0)
        deadlines = asyncio.create_task(self._fire_deadlines(desk)) if self.offers else None
        results = await asyncio.gather(*jobs, return_exceptions=True)
        if deadlines is not None:
            deadlines.cancel()
            results.append(await asyncio.gather(deadlines, return_exceptions=True))
        self.crashes = [
            repr(r)
            for r in results
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]

    async def _fire_deadlines(self, desk: Desk) -> None:
        """What bot.deadlines does, often: offers nobody answers run out meanwhile."""
        while True:
            await desk(offers.expire_due)
            await asyncio.sleep(0.01)

    def _courier(self, rng: random.Random) -> int:
        return rng.randint(1, self.couriers)

    async def _attempt(self, kind: str, use_case: Any, desk: Desk, *args: Any) -> Any:
        try:
            result = await desk(use_case, *args)
        except DomainError as error:
            self.outcomes[f"{kind}: {error.code}"] += 1
            return None
        self.outcomes[f"{kind}: ok"] += 1
        return result

    async def _post(self, desk: Desk, text: str) -> None:
        try:
            await self._attempt(
                "post", orders.post_order_text, desk, DISPATCHER, DISPATCH_CHAT, text
            )
        finally:
            self._posted_one()

    def _posted_one(self) -> None:
        self._posts_left -= 1
        if self._posts_left == 0:
            self._all_posted.set()

    async def _more_may_come(self, looked_after_the_last_post: bool) -> bool:
        """Whether to look again: False once a look came after every order was posted."""
        if looked_after_the_last_post:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_posted.wait(), 0.05)
        return True

    async def _complete(self, desk: Desk, telegram_id: int) -> None:
        """The courier accepts what they are offered, until an order is theirs (or none will
        come), and completes it."""
        while card := await self._card_with(desk, telegram_id, "complete", order=True):
            if card.offer is not None:
                await self._attempt("accept", offers.accept_offer, desk, telegram_id, card.offer.id)
            elif card.active_order is not None:
                order_id = card.active_order.id
                await self._attempt("complete", orders.complete_order, desk, telegram_id, order_id)
                return

    async def _decline(self, desk: Desk, telegram_id: int) -> None:
        """The courier waits for an offer (or for none to come), and declines it."""
        card = await self._card_with(desk, telegram_id, "decline", order=False)
        if card is not None and card.offer is not None:
            await self._attempt("decline", offers.decline_offer, desk, telegram_id, card.offer.id)

    async def _card_with(
        self, desk: Desk, telegram_id: int, kind: str, *, order: bool
    ) -> CourierCard | None:
        """The courier's card once it shows an offer (or, with `order`, an order in progress);
        None (counted as nothing to do) when none came by the last look after every post."""
        for _ in range(2000):  # writers take turns: the orders may still be on their way
            last = self._all_posted.is_set()
            card = await desk(couriers.my_card, telegram_id, UTC_ZONE)
            await asyncio.sleep(0)
            if card.offer or (order and card.active_order):
                return card
            if not await self._more_may_come(last):
                break
        self.outcomes[f"{kind}: nothing to do"] += 1
        return None

    async def _cancel(self, desk: Desk, order_id: int) -> None:
        await self._attempt("cancel", orders.cancel_order, desk, DISPATCHER, order_id)

    async def _toggle(self, desk: Desk, telegram_id: int, online: bool) -> None:
        await self._attempt("shift", couriers.set_online, desk, telegram_id, online, UTC_ZONE)

    async def _send_back(self, desk: Desk, order_id: int) -> None:
        await self._attempt("send back", orders.reassign_order, desk, DISPATCHER, order_id, None)

    async def _take_off_shift(self, desk: Desk, courier_id: int) -> None:
        await self._attempt("off shift", couriers.end_shift, desk, DISPATCHER, courier_id)

    async def _http_post(self, api: httpx.AsyncClient, district: str, n: int) -> None:
        body = {"name": f"shop parcel {n}", "district": district, "queue": True}
        try:
            response = await api.post("/order", json=body)
            self.outcomes[f"http post: {response.status_code}"] += 1
        finally:
            self._posted_one()

    async def _http_complete(self, api: httpx.AsyncClient, rng: random.Random) -> None:
        """A shop marks delivered the order some courier carries, as it sees it just now."""
        everyone = (await api.get("/courier")).json()
        sid = rng.choice(everyone)["sid"]
        for _ in range(2000):  # writers take turns: the orders may still be on their way
            last = self._all_posted.is_set()
            card = (await api.get(f"/courier/{sid}")).json()
            await asyncio.sleep(0)
            if card["active_order"] is not None:
                response = await api.post(f"/order/{card['active_order']['sid']}")
                self.outcomes[f"http complete: {response.status_code}"] += 1
                return
            if not await self._more_may_come(last):
                break
        self.outcomes["http complete: nothing to do"] += 1

    async def _block_for_a_while(self, desk: Desk, courier_id: int) -> None:
        await self._attempt("block", couriers.block_courier, desk, DISPATCHER, courier_id)
        await asyncio.sleep(0)
        await self._attempt("unblock", couriers.unblock_courier, desk, DISPATCHER, courier_id)


@dataclass
class Audit:
    """What the database says happened, and every rule it broke."""

    violations: list[str] = field(default_factory=list)
    assignments: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # offers declined, expired

    def fail(self, message: str) -> None:
        self.violations.append(message)


async def audit(uow_factory: UnitOfWorkFactory) -> Audit:
    uow = uow_factory()
    async with uow.read():
        session = uow.session
        events = list(await session.scalars(select(OrderEvent).order_by(OrderEvent.id)))
        all_orders = {o.id: o for o in await session.scalars(select(Order))}
        serves: dict[int, set[int]] = defaultdict(set)
        memberships = select(courier_districts.c.courier_id, courier_districts.c.district_id)
        for courier_id, district_id in await session.execute(memberships):
            serves[courier_id].add(district_id)
        outbox = list(await session.scalars(select(OutboxMessage)))
        everyone = list(await session.scalars(select(Courier)))
        chats = {c.id: c.telegram_id for c in everyone}
        copies = (
            await session.execute(
                select(courier_districts.c.courier_id, courier_districts.c.free_since)
            )
        ).all()
        report = Audit()
        _check_free_copies(report, everyone, copies)
        _check_histories(report, events, all_orders)
        _check_queue_order(report, events, all_orders, serves)
        _check_outbox(report, events, all_orders, outbox, chats)
        return report


def _check_free_copies(
    report: Audit, everyone: list[Courier], copies: list[tuple[int, Any]]
) -> None:
    """Each district row of a courier says they are free exactly when they can take orders."""
    expected = {c.id: c.free_since if c.status == "active" and c.online else None for c in everyone}
    for courier_id, free_since in copies:
        if free_since != expected[courier_id]:
            report.fail(
                f"courier {courier_id}: district copy {free_since}, not {expected[courier_id]}"
            )


def _check_histories(report: Audit, events: list[OrderEvent], all_orders: dict[int, Order]) -> None:
    """Each order walks the state machine, offered to one courier at a time and never by
    itself to one who declined it or let it run out; no courier ever holds two orders (an
    offer counts)."""
    state: dict[int, str] = {}
    holding: dict[int, int] = {}  # courier -> the order they are offered or carry
    refused: dict[int, set[int]] = defaultdict(set)
    for event in events:
        previous = state.get(event.order_id)
        if previous not in ALLOWED[event.kind]:
            report.fail(f"order {event.order_id}: {event.kind} after {previous}")
        courier = event.courier_id
        if event.kind == "offered" and courier in refused[event.order_id]:
            report.fail(f"order {event.order_id} offered again to {courier}, who refused it")
        if event.kind in ("declined", "expired"):
            assert courier is not None
            refused[event.order_id].add(courier)
            report.refusals[event.kind] += 1
        if event.kind == "assigned":
            report.assignments += 1
        if event.kind in HELD and not (event.kind == "assigned" and previous == "offered"):
            assert courier is not None
            if courier in holding:
                report.fail(
                    f"courier {courier} got order {event.order_id} while holding {holding[courier]}"
                )
            holding[courier] = event.order_id
        elif previous in HELD and courier is not None and event.kind not in HELD:
            holding.pop(courier, None)
        state[event.order_id] = event.kind
    for order_id, order in all_orders.items():
        _check_final_state(report, order, state.get(order_id))


def _check_final_state(report: Audit, order: Order, last_event: str | None) -> None:
    expected = AFTER.get(last_event or "", last_event)
    if order.status != expected:
        report.fail(f"order {order.id} is {order.status} but its history ends in {last_event}")
    stamps = (order.assigned_at, order.completed_at, order.cancelled_at)
    consistent = {
        "queued": stamps == (None, None, None) and order.courier_id is None,
        "offered": stamps == (None, None, None) and order.courier_id is not None,
        "assigned": order.assigned_at is not None and stamps[1:] == (None, None),
        "completed": None not in stamps[:2] and order.cancelled_at is None,
        "cancelled": order.cancelled_at is not None and order.completed_at is None,
    }[order.status]
    if not consistent:
        report.fail(f"order {order.id} is {order.status} with timestamps {stamps}")


def _check_queue_order(
    report: Audit,
    events: list[OrderEvent],
    all_orders: dict[int, Order],
    serves: dict[int, set[int]],
) -> None:
    """Whenever a courier got an order (or its offer), no older order of their districts that
    they may take was waiting (an order taken from a courier, declined or let run out by them,
    is not theirs to take).

    Event ids follow commit order only between transactions that share a district lock
    (on PostgreSQL, ids come from a sequence at insert time). Each assignment is compared
    with the orders of exactly the districts its transaction held: a posted order's district;
    a freed courier's districts; an order taken back or refused, its district and those of
    the courier it left.
    """
    created_at = {e.order_id: e.at for e in events if e.kind == "created"}
    left: dict[int, OrderEvent] = {}  # order -> the latest event that took it from a courier
    refused: dict[int, set[int]] = defaultdict(set)
    taken_back: dict[int, int] = {}  # order -> whom a dispatcher last took it from
    waiting: set[int] = set()
    state: dict[int, str] = {}
    for event in events:
        previous, state[event.order_id] = state.get(event.order_id), event.kind
        if event.kind in WAITING:
            waiting.add(event.order_id)
            if event.kind != "created" and event.courier_id is not None:
                left[event.order_id] = event
                if event.kind == "requeued":
                    taken_back[event.order_id] = event.courier_id
                else:
                    refused[event.order_id].add(event.courier_id)
            continue
        waiting.discard(event.order_id)
        if event.kind not in HELD or previous == "offered":
            continue  # an accepted offer was checked when it was made
        assert event.courier_id is not None
        order = all_orders[event.order_id]
        locked = serves[event.courier_id]
        parted = left.get(order.id)
        if event.at == created_at[order.id]:
            locked = {order.district_id}
        elif parted is not None and parted.at == event.at and parted.courier_id is not None:
            locked = {order.district_id} | serves[parted.courier_id]
        skipped = sorted(
            other
            for other in waiting
            if other < event.order_id
            and all_orders[other].district_id in locked & serves[event.courier_id]
            and taken_back.get(other) != event.courier_id
            and event.courier_id not in refused[other]
        )
        if skipped:
            report.fail(f"courier {event.courier_id} got {event.order_id} before older {skipped}")


def _check_outbox(
    report: Audit,
    events: list[OrderEvent],
    all_orders: dict[int, Order],
    outbox: list[OutboxMessage],
    courier_chat: dict[int, int | None],
) -> None:
    """Exactly one row for the courier per offer, answer, assignment and withdrawal, and one
    for the dispatcher per completion, per accepted offer and per assignment of an order that
    had waited in the queue."""
    expected: Counter[tuple[int | None, str, int]] = Counter()
    created_at = {e.order_id: e.at for e in events if e.kind == "created"}
    state: dict[int, str] = {}
    for event in events:
        order = all_orders[event.order_id]
        courier = courier_chat.get(event.courier_id) if event.courier_id else None
        dispatch = order.dispatcher_chat_id  # None: posted over HTTP, nobody to tell
        previous, state[order.id] = state.get(order.id), event.kind
        if event.kind == "offered":
            expected[(courier, "order_offered", order.id)] += 1
        elif event.kind == "assigned" and previous == "offered":
            expected[(courier, "offer_accepted", order.id)] += 1
            expected[(dispatch, "dispatch_accepted", order.id)] += 1
        elif event.kind == "assigned":
            expected[(courier, "order_assigned", order.id)] += 1
            if event.at != created_at[order.id]:
                expected[(dispatch, "dispatch_assigned", order.id)] += 1
        elif event.kind in ("declined", "expired"):
            expected[(courier, "offer_refused", order.id)] += 1
        elif event.kind == "completed":
            expected[(dispatch, "dispatch_completed", order.id)] += 1
        elif event.kind in ("cancelled", "requeued") and event.courier_id is not None:
            expected[(courier, "order_withdrawn", order.id)] += 1
    checked = {kind for _, kind, _ in expected}
    checked |= {"order_assigned", "dispatch_assigned", "dispatch_completed", "order_withdrawn"}
    actual = Counter(
        (row.chat_id, row.notice, row.order_id)
        for row in outbox
        if row.order_id
        and row.notice in checked
        and row.payload.get("reason") != "completed"  # a shop completed it over HTTP
    )
    for key in [key for key in expected if key[0] is None]:  # nobody in Telegram to tell
        del expected[key]
    for key in expected.keys() | actual.keys():
        if expected[key] != actual[key]:
            report.fail(f"outbox {key}: expected {expected[key]}, found {actual[key]}")
