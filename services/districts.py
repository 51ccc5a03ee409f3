"""District use cases: add, list, and finding the district an order text starts with."""

import re

from db.models import District
from db.uow import UnitOfWork
from services import clock
from services.access import Actor, require_dispatcher
from services.errors import Conflict, ErrorCode, UnknownDistrict
from services.read_models import DistrictView
from services.validation import NAME_KEY_MAX, clean_name, district_key, name_key

_WORD = re.compile(r"\S+")


async def add_district(uow: UnitOfWork, actor: Actor, name: str) -> DistrictView:
    name = clean_name(name, ErrorCode.DISTRICT_NAME_LENGTH)
    async with uow.write():
        await require_dispatcher(uow, actor)
        district = await uow.districts.add(name, district_key(name), clock.utcnow())
        if district is None:
            raise Conflict(ErrorCode.DISTRICT_EXISTS, name=name)
        view = DistrictView(id=district.id, name=district.name, sid=district.sid)
        await uow.commit()
    return view


async def list_districts(uow: UnitOfWork) -> list[DistrictView]:
    """Every district with its active couriers and waiting orders; anyone may look."""
    async with uow.read():
        return await all_districts(uow)


async def all_districts(uow: UnitOfWork) -> list[DistrictView]:
    """As list_districts, inside a transaction the caller opened."""
    return [
        DistrictView(id=d.id, name=d.name, sid=d.sid, couriers=couriers, queued=queued)
        for d, couriers, queued in await uow.districts.all_with_counts()
    ]


async def district_named(uow: UnitOfWork, name: str) -> District:
    """The district of exactly this name, compared as names are."""
    found = await uow.districts.by_keys([name_key(name)])
    if not found:
        raise UnknownDistrict(name)
    return found[0]


async def match_district_prefix(uow: UnitOfWork, text: str) -> tuple[District, str]:
    """Split `<district> <rest>`: the longest district name that the text's first words make.

    Words are compared as names are (services.validation.name_key): any case, any width,
    any run of spaces between them.
    """
    words = list(_WORD.finditer(text))
    prefixes: dict[str, int] = {}  # name key of the first n words -> where they end
    for count in range(1, len(words) + 1):
        key = name_key(text[words[0].start() : words[count - 1].end()])
        if len(key) > NAME_KEY_MAX:
            break
        prefixes[key] = words[count - 1].end()
    found = await uow.districts.by_keys(list(prefixes)) if prefixes else []
    if not found:
        raise UnknownDistrict(text.strip())
    best = max(found, key=lambda district: prefixes[district.name_key])
    return best, text[prefixes[best.name_key] :]
