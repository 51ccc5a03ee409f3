import pytest

from db.uow import UnitOfWorkFactory
from tests.conftest import FakeClock
from tests.helpers import Desk


@pytest.fixture
async def desk(uow_factory: UnitOfWorkFactory, fake_clock: FakeClock) -> Desk:
    """Services over a real database, with an admin and a dispatcher already there."""
    desk = Desk(uow_factory)
    await desk.staff_up()
    return desk
