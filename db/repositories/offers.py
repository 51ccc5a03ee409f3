"""Offers: the open one of each order, their deadlines, and what couriers made of them."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Offer, OfferOutcome
from db.repositories.base import Repository, table

# What a courier did with an offer, as their acceptance rate counts it: a withdrawn offer
# (cancelled, reassigned) was not theirs to answer.
_ANSWERED = (OfferOutcome.ACCEPTED, OfferOutcome.DECLINED, OfferOutcome.EXPIRED)
_REFUSED = (OfferOutcome.DECLINED, OfferOutcome.EXPIRED)


@dataclass(frozen=True, slots=True)
class Decided:
    """An offer decided in a transaction: for the metrics, once it commits."""

    outcome: OfferOutcome
    seconds: float  # from the offer to the decision


@dataclass(frozen=True, slots=True)
class Answered:
    """An offer a courier answered or let run out."""

    courier_id: int
    accepted_in: timedelta | None  # None: declined or run out


class OfferRepository(Repository):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        # The offers decided in this transaction, for whoever counts them after the commit.
        self.decided: list[Decided] = []

    async def open(
        self, order_id: int, courier_id: int, now: datetime, expires_at: datetime
    ) -> None:
        await self.session.execute(
            insert(table(Offer)),
            {
                "order_id": order_id,
                "courier_id": courier_id,
                "offered_at": now,
                "expires_at": expires_at,
            },
        )

    async def open_for(self, order_id: int) -> Offer | None:
        """The order's open offer, if it has one."""
        statement = (
            select(Offer)
            .where(Offer.order_id == order_id, Offer.outcome.is_(None))
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def last_between(self, order_id: int, courier_id: int) -> Offer | None:
        """The latest offer of this order to this courier."""
        statement = (
            select(Offer)
            .where(Offer.order_id == order_id, Offer.courier_id == courier_id)
            .order_by(Offer.id.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def decide(self, offer: Offer, outcome: OfferOutcome, now: datetime) -> bool:
        """Close an open offer with this outcome; False if it was closed already."""
        decided = await self._compare_and_set(
            update(Offer)
            .where(Offer.id == offer.id, Offer.outcome.is_(None))
            .values(outcome=outcome, decided_at=now)
        )
        if decided:
            seconds = (now - offer.offered_at).total_seconds()
            self.decided.append(Decided(outcome, seconds))
        return decided

    async def refused_by(self, order_id: int) -> set[int]:
        """The couriers who declined this order or let its offer run out."""
        statement = select(Offer.courier_id).where(
            Offer.order_id == order_id, Offer.outcome.in_(_REFUSED)
        )
        return set(await self.session.scalars(statement))

    async def due(self, now: datetime, limit: int) -> list[Offer]:
        """Open offers whose deadline has come, soonest first."""
        statement = (
            select(Offer)
            .where(Offer.outcome.is_(None), Offer.expires_at <= now)
            .order_by(Offer.expires_at, Offer.id)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def next_deadline(self) -> datetime | None:
        statement = select(func.min(Offer.expires_at)).where(Offer.outcome.is_(None))
        deadline: datetime | None = await self.session.scalar(statement)
        return deadline

    async def deadlines(self, order_ids: Iterable[int]) -> dict[int, datetime]:
        """When the open offer of each of these orders runs out."""
        statement = select(Offer.order_id, Offer.expires_at).where(
            Offer.order_id.in_(set(order_ids)), Offer.outcome.is_(None)
        )
        return dict((await self.session.execute(statement)).all())

    async def answered_since(
        self, since: datetime, courier_ids: Iterable[int] | None = None
    ) -> list[Answered]:
        """The offers made since then that couriers (all, or these) answered or let run out."""
        statement = select(
            Offer.courier_id, Offer.outcome, Offer.offered_at, Offer.decided_at
        ).where(Offer.offered_at >= since, Offer.outcome.in_(_ANSWERED))
        if courier_ids is not None:
            statement = statement.where(Offer.courier_id.in_(set(courier_ids)))
        return [
            Answered(
                courier_id,
                decided_at - offered_at
                if outcome == OfferOutcome.ACCEPTED and decided_at is not None
                else None,
            )
            for courier_id, outcome, offered_at, decided_at in await self.session.execute(statement)
        ]
