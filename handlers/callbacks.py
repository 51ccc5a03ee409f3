"""Typed callback data. Every field comes from the user, so services re-check what it allows.

Numbers are bounded like the database's ids: forged data that breaks a bound does not unpack,
so the button is answered as out of date and nothing reaches a service.
"""

from enum import StrEnum
from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from services.validation import MAX_ID

RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
Offset = Annotated[int, Field(ge=0, le=MAX_ID)]


class CompleteOrder(CallbackData, prefix="done"):
    order_id: RowId


class AcceptOffer(CallbackData, prefix="acc"):
    order_id: RowId


class DeclineOffer(CallbackData, prefix="dec"):
    order_id: RowId


class DecideRegistration(CallbackData, prefix="reg"):
    courier_id: RowId
    approve: bool


class ToggleDistrict(CallbackData, prefix="tgl"):
    district_id: RowId


class FinishDistricts(CallbackData, prefix="fin"):
    pass


class OrderDistrict(CallbackData, prefix="odist"):
    district_id: RowId


class Listing(StrEnum):
    ORDERS = "o"
    COURIERS = "c"


class ListPage(CallbackData, prefix="page"):
    listing: Listing
    offset: Offset


class OpenCourier(CallbackData, prefix="card"):
    courier_id: RowId


class SkipPlace(CallbackData, prefix="skip"):
    """The /order form's Skip, for a pickup or drop-off point."""
