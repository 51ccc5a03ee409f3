"""The playground's business: three districts, an admin, a dispatcher and three couriers on
shift, made through the same services the bot uses."""

from db.uow import UnitOfWorkFactory
from playground.chats import Person
from services import couriers, districts, staff

DISTRICTS = ("Old Town", "Riverside", "Harbour")
ADMIN = Person(1001, "Alice", "admin")
DISPATCHER = Person(1002, "Dan", "dispatcher")
ANN_ID = 2001
COURIERS = (
    (Person(ANN_ID, "Ann", "courier"), ("Old Town",)),
    (Person(2002, "Bob", "courier"), ("Old Town", "Riverside")),
    (Person(2003, "Cat", "courier"), ("Harbour",)),
)
CAST = (ADMIN, DISPATCHER, *(person for person, _ in COURIERS))  # in the page's order


async def seed(uow_factory: UnitOfWorkFactory) -> None:
    """Fill a fresh database (whose ADMIN_IDS hold the admin's id) with the cast."""
    await staff.grant_dispatcher(uow_factory(), ADMIN.id, DISPATCHER.id)
    made = {}
    for name in DISTRICTS:
        made[name] = (await districts.add_district(uow_factory(), ADMIN.id, name)).id
    for person, theirs in COURIERS:
        await couriers.register_courier(
            uow_factory(),
            person.id,
            person.name,
            [made[name] for name in theirs],
            approval_required=False,
            locale=person.language,
        )
