"""Every button's callback data fits Telegram's 64 bytes, whatever the ids grow to, and forged
numbers past the database's bounds do not unpack."""

import pytest
from aiogram.filters.callback_data import CallbackData

from handlers.callbacks import (
    CompleteOrder,
    DecideRegistration,
    FinishDistricts,
    Listing,
    ListPage,
    OpenCourier,
    OrderDistrict,
    ToggleDistrict,
)
from services.validation import MAX_ID

BIGGEST = MAX_ID


@pytest.mark.parametrize(
    "data",
    [
        CompleteOrder(order_id=BIGGEST),
        DecideRegistration(courier_id=BIGGEST, approve=False),
        ToggleDistrict(district_id=BIGGEST),
        FinishDistricts(),
        OrderDistrict(district_id=BIGGEST),
        ListPage(listing=Listing.COURIERS, offset=BIGGEST),
        OpenCourier(courier_id=BIGGEST),
    ],
)
def test_packed_data_fits_64_bytes_and_round_trips(data: CallbackData):
    packed = data.pack()
    assert len(packed.encode()) <= 64
    assert type(data).unpack(packed) == data


@pytest.mark.parametrize(
    ("kind", "packed"),
    [
        (CompleteOrder, f"done:{MAX_ID + 1}"),
        (CompleteOrder, "done:0"),
        (CompleteOrder, "done:-5"),
        (ListPage, f"page:o:{2**64}"),
        (ListPage, "page:o:-1"),
        (OpenCourier, "card:99999999999"),
    ],
)
def test_numbers_out_of_bounds_do_not_unpack(kind: type[CallbackData], packed: str):
    with pytest.raises(ValueError, match="validation error"):
        kind.unpack(packed)
