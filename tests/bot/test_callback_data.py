"""Every button's callback data fits Telegram's 64 bytes, whatever the ids grow to."""

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

BIGGEST = 2**63 - 1  # a BIGINT; our ids are far smaller


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
