"""Typed callback data. Every field comes from the user, so services re-check what it allows."""

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class CompleteOrder(CallbackData, prefix="done"):
    order_id: int


class DecideRegistration(CallbackData, prefix="reg"):
    courier_id: int
    approve: bool


class ToggleDistrict(CallbackData, prefix="tgl"):
    district_id: int


class FinishDistricts(CallbackData, prefix="fin"):
    pass


class OrderDistrict(CallbackData, prefix="odist"):
    district_id: int


class Listing(StrEnum):
    ORDERS = "o"
    COURIERS = "c"


class ListPage(CallbackData, prefix="page"):
    listing: Listing
    offset: int


class OpenCourier(CallbackData, prefix="card"):
    courier_id: int
