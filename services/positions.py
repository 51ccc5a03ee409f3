"""Where couriers are: the positions Telegram sends while they share their location.

A position is kept during the courier's shift only: one sent off shift is dropped, and the
end of a shift erases it (CourierRepository). A one-time location counts for
LOCATION_FRESH_SECONDS; a live one while Telegram keeps sending its edits, until its
`live_period` ends or the courier stops it.

Live locations are the bot's most frequent writes. The front doors hand them to a writer that
keeps each courier's latest and writes a batch in one short transaction (`record`); they
never pass through the inbox, nor wait behind a courier's other updates.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from db.uow import UnitOfWork
from services import geo
from services.access import require_courier
from services.read_models import PositionView


@dataclass(frozen=True, slots=True)
class Fix:
    """A position as Telegram gave it: whose, where and when."""

    telegram_id: int
    lat: float
    lon: float
    at: datetime
    live_until: datetime | None = None  # a live location: when Telegram stops updating it
    stopped: bool = False  # the courier stopped sharing it: it no longer counts
    update_id: int = 0  # of two in the same second, the later update wins

    @property
    def order(self) -> tuple[datetime, int]:
        return self.at, self.update_id


async def record(uow: UnitOfWork, fixes: Sequence[Fix]) -> int:
    """Keep each courier's latest of these positions, in one transaction; how many couriers'
    were kept. Those of people not on shift as couriers are dropped."""
    latest: dict[int, Fix] = {}
    for fix in fixes:
        kept = latest.get(fix.telegram_id)
        if geo.valid(fix.lat, fix.lon) and (kept is None or kept.order <= fix.order):
            latest[fix.telegram_id] = fix
    if not latest:
        return 0
    async with uow.write():
        couriers = await uow.positions.on_shift(latest)
        rows = [
            _row(courier_id, latest[telegram_id], uow.rules.location_fresh_seconds)
            for telegram_id, courier_id in couriers.items()
        ]
        await uow.positions.write(sorted(rows, key=lambda row: row["courier_id"]))
        await uow.commit()
    return len(rows)


async def share(uow: UnitOfWork, fix: Fix) -> PositionView | None:
    """A courier sent their location (once, or the start of a live one): kept, and how it
    stands; None when they are off shift, and nothing is kept."""
    async with uow.write():
        await require_courier(uow, fix.telegram_id)
        on_shift = await uow.positions.on_shift([fix.telegram_id])
        if not on_shift:
            return None
        row = _row(on_shift[fix.telegram_id], fix, uow.rules.location_fresh_seconds)
        await uow.positions.write([row])
        await uow.commit()
    return PositionView(fix.lat, fix.lon, fix.at, row["fresh_until"], fix.live_until)


async def erase_off_shift(uow: UnitOfWork) -> int:
    """Forget any position of a courier off shift; for the scheduler."""
    async with uow.write():
        erased = await uow.positions.erase_off_shift()
        await uow.commit()
    return erased


def _row(courier_id: int, fix: Fix, fresh_seconds: float) -> dict[str, Any]:
    fresh_until = fix.at if fix.stopped else fix.at + timedelta(seconds=fresh_seconds)
    if fix.live_until is not None:
        fresh_until = min(fresh_until, fix.live_until)
    return {
        "courier_id": courier_id,
        "lat": fix.lat,
        "lon": fix.lon,
        "cell": geo.cell_of(fix.lat, fix.lon),
        "at": fix.at,
        "update_id": fix.update_id,
        "fresh_until": fresh_until,
        "live_until": None if fix.stopped else fix.live_until,
    }
