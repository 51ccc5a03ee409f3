"""District use cases: add, list, and finding the district an order text starts with."""

from db.models import District
from db.uow import UnitOfWork
from services import clock
from services.access import require_dispatcher
from services.errors import Conflict, NotFound
from services.validation import clean_name, name_key
from services.views import DistrictView


async def add_district(uow: UnitOfWork, actor_id: int, name: str) -> DistrictView:
    await require_dispatcher(uow, actor_id)
    name = clean_name(name, "district_name")
    district_id = await uow.districts.add(name, name_key(name), clock.utcnow())
    if district_id is None:
        raise Conflict("district_exists", name=name)
    await uow.commit()
    return DistrictView(id=district_id, name=name)


async def list_districts(uow: UnitOfWork) -> list[DistrictView]:
    """Every district with its active couriers and waiting orders; anyone may look."""
    return [
        DistrictView(id=d.id, name=d.name, couriers=couriers, queued=queued)
        for d, couriers, queued in await uow.districts.all_with_counts()
    ]


async def match_district_prefix(uow: UnitOfWork, text: str) -> tuple[District, str]:
    """Split `<district> <rest>`: the longest known name that starts the text, any case."""
    text = text.strip()
    best: District | None = None
    for district in await uow.districts.all():
        size = len(district.name)
        head, tail = text[:size], text[size:]
        if name_key(head) != district.name_key or (tail and not tail[0].isspace()):
            continue
        if best is None or size > len(best.name):
            best = district
    if best is None:
        raise NotFound("district_unknown", text=text)
    return best, text[len(best.name) :]
