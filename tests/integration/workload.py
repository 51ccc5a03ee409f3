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
from db.repositories.orders import OrderRepository
from db.uow import UnitOfWorkFactory
from services import couriers, orders
from services.errors import DomainError
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

UTC_ZONE = ZoneInfo("UTC")
RACY_READS = {
    CourierRepository: ["get", "by_telegram_id", "district_ids", "longest_free", "lock"],
    OrderRepository: ["get", "oldest_queued_for", "queued_in", "in_progress_for"],
}


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
    seed: int = 20261128
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    _posts_left: int = 0
    _all_posted: asyncio.Event = field(default_factory=asyncio.Event)

    def scaled(self, share: float) -> "Workload":
        """The same mix of operations, `share` as many of each."""
        counts = ("posts", "completions", "cancels", "toggles", "takebacks", "blocks")
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
        rng.shuffle(jobs)
        self._posts_left = self.posts + (self.http_posts if self.api else 0)
        results = await asyncio.gather(*jobs, return_exceptions=True)
        self.crashes = [repr(r) for r in results if isinstance(r, BaseException)]

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
        """The courier looks at their card until an order is there (or none will come), and
        completes it."""
        for _ in range(2000):  # writers take turns: the orders may still be on their way
            last = self._all_posted.is_set()
            card = await desk(couriers.my_card, telegram_id, UTC_ZONE)
            await asyncio.sleep(0)
            if card.active_order is not None:
                await self._attempt(
                    "complete", orders.complete_order, desk, telegram_id, card.active_order.id
                )
                return
            if not await self._more_may_come(last):
                break
        self.outcomes["complete: nothing to do"] += 1

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
    """Each order walks the state machine; no courier ever carries two orders."""
    state: dict[int, str] = {}
    carrying: dict[int, int] = {}
    for event in events:
        previous = state.get(event.order_id)
        allowed = {
            "created": {None},
            "assigned": {"created", "requeued"},
            "requeued": {"assigned"},
            "completed": {"assigned"},
            "cancelled": {"created", "requeued", "assigned"},
        }[event.kind]
        if previous not in allowed:
            report.fail(f"order {event.order_id}: {event.kind} after {previous}")
        if event.kind == "assigned":
            report.assignments += 1
            assert event.courier_id is not None
            if event.courier_id in carrying:
                report.fail(
                    f"courier {event.courier_id} got order {event.order_id}"
                    f" while carrying {carrying[event.courier_id]}"
                )
            carrying[event.courier_id] = event.order_id
        elif previous == "assigned" and event.courier_id is not None:
            carrying.pop(event.courier_id, None)
        state[event.order_id] = event.kind
    for order_id, order in all_orders.items():
        _check_final_state(report, order, state.get(order_id))


def _check_final_state(report: Audit, order: Order, last_event: str | None) -> None:
    expected = {"created": "queued", "requeued": "queued"}.get(last_event or "", last_event)
    if order.status != expected:
        report.fail(f"order {order.id} is {order.status} but its history ends in {last_event}")
    stamps = (order.assigned_at, order.completed_at, order.cancelled_at)
    consistent = {
        "queued": stamps == (None, None, None) and order.courier_id is None,
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
    """Whenever a courier got an order, no older order of their districts that they may take
    was waiting (an order taken from a courier is not theirs to take).

    Event ids follow commit order only between transactions that share a district lock
    (on PostgreSQL, ids come from a sequence at insert time). Each assignment is compared
    with the orders of exactly the districts its transaction held: a posted order's district;
    a freed courier's districts; an order taken back, its district and those of the courier
    it was taken from.
    """
    created_at = {e.order_id: e.at for e in events if e.kind == "created"}
    taken_back: dict[int, OrderEvent] = {}  # order -> its latest requeue
    waiting: set[int] = set()
    for event in events:
        if event.kind in ("created", "requeued"):
            waiting.add(event.order_id)
            if event.kind == "requeued":
                taken_back[event.order_id] = event
            continue
        waiting.discard(event.order_id)
        if event.kind != "assigned":
            continue
        assert event.courier_id is not None
        order = all_orders[event.order_id]
        locked = serves[event.courier_id]
        requeue = taken_back.get(order.id)
        if event.at == created_at[order.id]:
            locked = {order.district_id}
        elif requeue is not None and requeue.at == event.at and requeue.courier_id is not None:
            locked = {order.district_id} | serves[requeue.courier_id]
        skipped = sorted(
            other
            for other in waiting
            if other < event.order_id
            and all_orders[other].district_id in locked
            and _taken_from(taken_back.get(other)) != event.courier_id
        )
        if skipped:
            report.fail(f"courier {event.courier_id} got {event.order_id} before older {skipped}")


def _taken_from(requeue: OrderEvent | None) -> int | None:
    return requeue.courier_id if requeue is not None else None


def _check_outbox(
    report: Audit,
    events: list[OrderEvent],
    all_orders: dict[int, Order],
    outbox: list[OutboxMessage],
    courier_chat: dict[int, int | None],
) -> None:
    """Exactly one row for the courier per assignment, and one for the dispatcher per
    completion and per assignment of an order that had waited in the queue."""
    expected: Counter[tuple[int, str, int]] = Counter()
    created_at = {e.order_id: e.at for e in events if e.kind == "created"}
    for event in events:
        order = all_orders[event.order_id]
        courier = courier_chat.get(event.courier_id) if event.courier_id else None
        dispatch = order.dispatcher_chat_id  # None: posted over HTTP, nobody to tell
        if event.kind == "assigned":
            expected[(courier, "order_assigned", order.id)] += 1
            if event.at != created_at[order.id]:
                expected[(dispatch, "dispatch_assigned", order.id)] += 1
        elif event.kind == "completed":
            expected[(dispatch, "dispatch_completed", order.id)] += 1
        elif event.kind in ("cancelled", "requeued") and event.courier_id is not None:
            expected[(courier, "order_withdrawn", order.id)] += 1
    checked = {"order_assigned", "dispatch_assigned", "dispatch_completed", "order_withdrawn"}
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
