"""How late offers' deadlines fire with 1,000 offers pending at once.

A district of 1,000 free couriers; orders posted at RATE a second (five busy dispatchers), each
offered to a courier for as long as it takes to post them all, so that all 1,000 offers stand
at once when the first runs out. The deadline loop the bot runs (bot.deadlines) fires them
as they come due, in the same process, while nobody answers: each passes its order on,
which makes a new offer, and the courier is offered another. The figure is how long after
its deadline each of the first 1,000 offers was decided, from the database.

Run with `.venv/bin/python -m benchmarks.deadlines [offers] [postgresql+asyncpg://...]`.
"""

import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.common import DISPATCHER, business, reset_postgres, summary_ms
from bot.deadlines import OfferDeadlines
from db.models import Offer
from db.uow import DispatchRules, UnitOfWorkFactory
from services import orders

DISPATCH_CHAT = -1
RATE = 50.0  # orders a second: 1,000 offers of 20 s pending at once


async def lateness(engine: AsyncEngine, offers: int) -> list[float]:
    """Seconds from each first-wave deadline to its firing."""
    seconds = offers / RATE  # the last offer is made as the first runs out
    factory = UnitOfWorkFactory(engine, rules=DispatchRules(offer_seconds=seconds))
    firing = asyncio.create_task(OfferDeadlines(factory).run())
    try:
        started = time.monotonic()
        for n in range(offers):
            await orders.post_order(factory(), DISPATCHER, DISPATCH_CHAT, 1, f"parcel {n}")
            await asyncio.sleep(max(0.0, started + (n + 1) / RATE - time.monotonic()))
        await asyncio.sleep(seconds)
        late = None
        while late is None:  # the database says, not an event
            await asyncio.sleep(0.5)
            late = await _decided(factory, offers)
    finally:
        firing.cancel()
        await asyncio.gather(firing, return_exceptions=True)
    return late


async def _decided(factory: UnitOfWorkFactory, offers: int) -> list[float] | None:
    """How late each of the first `offers` offers was decided; None while any is open."""
    uow = factory()
    async with uow.read():
        rows = (
            await uow.session.execute(
                select(Offer.expires_at, Offer.decided_at).where(Offer.id <= offers)
            )
        ).all()
    if any(decided is None for _, decided in rows):
        return None
    return [(decided - due) / timedelta(seconds=1) for due, decided in rows if decided]


async def run(offers: int, url: str | None) -> None:
    if url is not None:
        await reset_postgres(url)
    with tempfile.TemporaryDirectory() as folder:
        engine = await business(url or f"sqlite+aiosqlite:///{Path(folder) / 'd.sqlite3'}", offers)
        try:
            late = await lateness(engine, offers)
        finally:
            await engine.dispose()
    print(
        f"deadlines, {offers} offers pending at once on {engine.dialect.name}, made at"
        f" {RATE:.0f}/s: fired {summary_ms(late)} late, max {max(late) * 1000:.0f} ms"
    )


def main() -> None:
    offers = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    url = sys.argv[2] if len(sys.argv) > 2 else None
    asyncio.run(run(offers, url))


if __name__ == "__main__":
    main()
