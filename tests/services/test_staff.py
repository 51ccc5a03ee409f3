"""Admins from the settings, dispatchers granted by admins."""

import pytest

from services import staff
from services.errors import Conflict, Forbidden, NotFound
from services.read_models import StaffRole
from tests.helpers import ADMIN, DISPATCHER, STRANGER, Desk


async def test_admins_follow_the_settings(desk: Desk):
    await desk(staff.sync_admins, [ADMIN, 2000])
    assert (await desk(staff.identify, 2000)).is_admin

    await desk(staff.sync_admins, [2000])

    assert (await desk(staff.identify, ADMIN)).role is StaffRole.DISPATCHER
    with pytest.raises(Forbidden):
        await desk(staff.list_staff, ADMIN)


async def test_admin_grants_and_revokes_dispatchers(desk: Desk):
    granted = await desk(staff.grant_dispatcher, ADMIN, 42)
    assert granted.role is StaffRole.DISPATCHER
    assert (await desk(staff.identify, 42)).is_dispatcher
    listed = await desk(staff.list_staff, ADMIN)
    assert {(m.telegram_id, m.role) for m in listed} == {
        (ADMIN, StaffRole.ADMIN),
        (DISPATCHER, StaffRole.DISPATCHER),
        (42, StaffRole.DISPATCHER),
    }

    await desk(staff.revoke_dispatcher, ADMIN, 42)

    assert not (await desk(staff.identify, 42)).is_dispatcher
    with pytest.raises(NotFound):
        await desk(staff.revoke_dispatcher, ADMIN, 42)


async def test_staff_changes_are_admin_only_and_checked(desk: Desk):
    with pytest.raises(Forbidden):
        await desk(staff.grant_dispatcher, DISPATCHER, 42)
    with pytest.raises(Forbidden):
        await desk(staff.revoke_dispatcher, STRANGER, DISPATCHER)
    with pytest.raises(Conflict) as error:
        await desk(staff.grant_dispatcher, ADMIN, DISPATCHER)
    assert error.value.code == "already_staff"
    with pytest.raises(Conflict) as error:
        await desk(staff.revoke_dispatcher, ADMIN, ADMIN)
    assert error.value.code == "cannot_revoke_admin"


async def test_identify_knows_couriers_and_strangers(desk: Desk):
    ids = await desk.add_districts("North")
    await desk.add_courier(DISPATCHER, [ids["North"]])

    both = await desk(staff.identify, DISPATCHER, "ru")
    nobody = await desk(staff.identify, STRANGER, "ru")

    assert both.is_dispatcher
    assert both.courier is not None
    assert nobody.role is None
    assert nobody.courier is None
    uow = desk.uow_factory()
    async with uow.read():  # the language is remembered for the notices they will get
        member = await uow.staff.get(DISPATCHER)
        courier = await uow.couriers.by_telegram_id(DISPATCHER)
        assert member is not None
        assert courier is not None
        assert (member.locale, courier.locale) == ("ru", "ru")
