"""Districts: names, uniqueness, listing."""

import pytest

from services import districts, orders
from services.errors import Conflict, Forbidden, InvalidInput
from tests.helpers import DISPATCH_CHAT, DISPATCHER, STRANGER, Desk


async def test_names_are_trimmed_and_unique_in_any_case(desk: Desk):
    added = await desk(districts.add_district, DISPATCHER, "  Old   Town ")
    assert added.name == "Old Town"

    for clash in ("old town", "OLD TOWN"):
        with pytest.raises(Conflict) as error:
            await desk(districts.add_district, DISPATCHER, clash)
        assert error.value.code == "district_exists"


async def test_uniqueness_holds_beyond_ascii(desk: Desk):
    await desk(districts.add_district, DISPATCHER, "Центр")
    with pytest.raises(Conflict):
        await desk(districts.add_district, DISPATCHER, "ЦЕНТР")


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
async def test_name_must_have_1_to_64_characters(desk: Desk, name: str):
    with pytest.raises(InvalidInput) as error:
        await desk(districts.add_district, DISPATCHER, name)
    assert error.value.code == "district_name_length"
    assert await desk(districts.list_districts) == []


async def test_64_characters_are_fine(desk: Desk):
    assert (await desk(districts.add_district, DISPATCHER, "y" * 64)).name == "y" * 64


async def test_only_staff_add_districts(desk: Desk):
    with pytest.raises(Forbidden):
        await desk(districts.add_district, STRANGER, "North")


async def test_list_counts_active_couriers_and_waiting_orders(desk: Desk):
    ids = await desk.add_districts("North", "South")
    await desk.add_courier(1, [ids["North"], ids["South"]])
    await desk.add_courier(2, [ids["South"]])
    for text in ("South a", "South b", "South c", "North d"):
        await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, text)

    listed = {d.name: (d.couriers, d.queued) for d in await desk(districts.list_districts)}

    assert listed == {"North": (1, 1), "South": (2, 1)}
