"""Bad input gets a clear domain error and changes nothing, on SQLite and PostgreSQL alike.

Nothing here may reach the database as a database error: ids past INTEGER, names whose
case fold outgrows a column, control characters PostgreSQL refuses.
"""

from zoneinfo import ZoneInfo

import pytest

from services import couriers, districts, orders
from services.errors import DomainError, ErrorCode, InvalidInput
from tests.helpers import DISPATCH_CHAT, DISPATCHER, Desk

UTC_ZONE = ZoneInfo("UTC")
HUGE = [2**31, 3_000_000_000, 99_999_999_999, 10**30, 0, -5]


async def snapshot(desk: Desk) -> tuple[object, ...]:
    """What a refused request must leave as it was."""
    page = await desk(orders.active_orders, DISPATCHER, 0, 100)
    roster = await desk(couriers.list_couriers, DISPATCHER, 0, 100)
    return page, roster, await desk(districts.list_districts), await desk.outbox()


@pytest.fixture
async def business(desk: Desk) -> Desk:
    """A district, a courier carrying an order, and one order waiting."""
    ids = await desk.add_districts("North")
    await desk.add_courier(7, [ids["North"]])
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North first")
    await desk(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North second")
    return desk


USE_CASES_TAKING_IDS = {
    "track": lambda desk, n: desk(orders.order_status, DISPATCHER, n),
    "card": lambda desk, n: desk(couriers.courier_card, DISPATCHER, n, UTC_ZONE),
    "complete (forged button)": lambda desk, n: desk(orders.complete_order, 7, n),
    "cancel": lambda desk, n: desk(orders.cancel_order, DISPATCHER, n),
    "reassign the order": lambda desk, n: desk(orders.reassign_order, DISPATCHER, n, None),
    "reassign to courier": lambda desk, n: desk(orders.reassign_order, DISPATCHER, 2, n),
    "decide (forged button)": lambda desk, n: desk(
        couriers.decide_registration, DISPATCHER, n, approve=True
    ),
    "post to district (forged button)": lambda desk, n: desk(
        orders.post_order, DISPATCHER, DISPATCH_CHAT, n, "tea"
    ),
    "my districts (forged button)": lambda desk, n: desk(couriers.set_districts, 7, [n]),
    "offline courier": lambda desk, n: desk(couriers.end_shift, DISPATCHER, n),
    "block": lambda desk, n: desk(couriers.block_courier, DISPATCHER, n),
    "unblock": lambda desk, n: desk(couriers.unblock_courier, DISPATCHER, n),
}


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("call", USE_CASES_TAKING_IDS.values(), ids=USE_CASES_TAKING_IDS.keys())
async def test_ids_no_row_can_have_are_simply_not_found(business: Desk, call, number: int):
    before = await snapshot(business)
    with pytest.raises(DomainError) as error:
        await call(business, number)
    assert error.value.code in {
        ErrorCode.ORDER_NOT_FOUND,
        ErrorCode.COURIER_NOT_FOUND,
        ErrorCode.DISTRICT_NOT_FOUND,
    }
    assert await snapshot(business) == before


@pytest.mark.parametrize("offset", [2**31, 2**63, 10**30])
async def test_pages_past_any_row_are_empty(business: Desk, offset: int):
    assert (await business(orders.active_orders, DISPATCHER, offset, 10)).items == ()
    assert (await business(couriers.list_couriers, DISPATCHER, offset, 10)).total == 1


async def test_a_negative_offset_is_the_first_page(business: Desk):
    first = await business(orders.active_orders, DISPATCHER, 0, 10)
    assert await business(orders.active_orders, DISPATCHER, -1, 10) == first


@pytest.mark.parametrize(
    "name",
    [
        "ﬃ" * 22,  # NFKC: 66 characters
        "\u200b\u200d\u2060",  # zero-width only
        "\u202e\u202d",  # bidi overrides only
        "\x00\x01\x7f",  # control characters only
        "\u3164\u3164",  # blank letters
        "x" * 10_000_000,
    ],
)
async def test_district_names_that_break_the_rules(business: Desk, name: str):
    before = await snapshot(business)
    with pytest.raises(InvalidInput) as error:
        await business(districts.add_district, DISPATCHER, name)
    assert error.value.code is ErrorCode.DISTRICT_NAME_LENGTH
    assert error.value.params == {"min": 1, "max": 64}
    assert await snapshot(business) == before


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("ß" * 40, "ß" * 40),  # its case fold, "ss" * 40, outgrows 64 characters
        ("ΐ" * 64, "ΐ" * 64),  # folds to three code points each
        ("\u202eEvil\u202c Town", "Evil Town"),
        ("Old\x00 Town\u200b", "Old Town"),
        ("\uff2e\uff4f\uff52\uff54\uff48 \uff25\uff4e\uff44", "North End"),  # full width
    ],
)
async def test_district_names_are_normalized(business: Desk, typed: str, stored: str):
    assert (await business(districts.add_district, DISPATCHER, typed)).name == stored


FULL_WIDTH_STRASSE = "\uff33\uff34\uff32\uff21\uff33\uff33\uff25"


@pytest.mark.parametrize(
    "clash", ["STRASSE", "strasse", "Straße", FULL_WIDTH_STRASSE, "Stra\u200bße"]
)
async def test_one_key_for_duplicates_and_for_orders(business: Desk, clash: str):
    await business(districts.add_district, DISPATCHER, "Straße")
    with pytest.raises(DomainError) as error:
        await business(districts.add_district, DISPATCHER, clash)
    assert error.value.code is ErrorCode.DISTRICT_EXISTS

    order = await business(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, f"{clash} pizza")
    assert (order.district, order.description) == ("Straße", "pizza")


@pytest.mark.parametrize(
    "text", ["Old  Town pizza", "old town\tpizza", "OLD\u00a0TOWN pizza", " Old Town   pizza "]
)
async def test_order_text_matches_a_district_whatever_the_spaces(business: Desk, text: str):
    await business(districts.add_district, DISPATCHER, "Old Town")
    order = await business(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, text)
    assert (order.district, order.description) == ("Old Town", "pizza")


async def test_a_description_keeps_lines_and_loses_control_characters(business: Desk):
    order = await business(
        orders.post_order_text, DISPATCHER, DISPATCH_CHAT, "North soup\x00\x07\nflat 4\tleft"
    )
    assert order.description == "soup\nflat 4\tleft"


async def test_a_description_loses_bidi_overrides_and_invisible_characters(business: Desk):
    text = "North \u202eflat 4\u202c, \u200bring\u2028twice 👨\u200d👩\u200d👧"
    order = await business(orders.post_order_text, DISPATCHER, DISPATCH_CHAT, text)
    assert order.description == "flat 4, ring\ntwice 👨\u200d👩\u200d👧"


@pytest.mark.parametrize("name", ["\u200b", "\x00", " \u3164 ", "y" * 65])
async def test_courier_names_that_break_the_rules(business: Desk, name: str):
    before = await snapshot(business)
    with pytest.raises(InvalidInput) as error:
        await business(couriers.register_courier, 8, name, [1], approval_required=True)
    assert error.value.code is ErrorCode.COURIER_NAME_LENGTH
    assert await snapshot(business) == before


@pytest.mark.parametrize("token", ["", "x" * 65, "../../etc", "tok\x00en", "тест", "a b"])
async def test_invite_tokens_that_cannot_be_ours(business: Desk, token: str):
    with pytest.raises(DomainError) as error:
        await business(couriers.accept_invite, token, 8, None)
    assert error.value.code is ErrorCode.INVITE_INVALID
