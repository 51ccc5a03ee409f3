"""Inline and reply keyboards."""

from collections.abc import Collection, Sequence
from typing import Any

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import (
    AcceptOffer,
    CompleteOrder,
    DecideRegistration,
    DeclineOffer,
    FinishDistricts,
    Listing,
    ListPage,
    OpenCourier,
    OrderDistrict,
    SkipPlace,
    ToggleDistrict,
)
from services.read_models import CourierView, DistrictView, Page

PAGE_SIZE = 10
# Telegram allows 100 buttons in an inline keyboard; a few are kept for Done and paging.
MAX_DISTRICT_BUTTONS = 96


def complete_order(order_id: int) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=_("✅ Complete"), callback_data=CompleteOrder(order_id=order_id).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def answer_offer(order_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Accept"), callback_data=AcceptOffer(order_id=order_id))
    builder.button(text=_("✖️ Decline"), callback_data=DeclineOffer(order_id=order_id))
    return builder.as_markup()


def decide_registration(courier_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("✅ Approve"), callback_data=DecideRegistration(courier_id=courier_id, approve=True)
    )
    builder.button(
        text=_("❌ Reject"), callback_data=DecideRegistration(courier_id=courier_id, approve=False)
    )
    return builder.as_markup()


def toggle_districts(
    districts: Sequence[DistrictView], chosen: Collection[int]
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for district in districts[:MAX_DISTRICT_BUTTONS]:
        mark = "✅ " if district.id in chosen else ""
        builder.button(
            text=f"{mark}{district.name}", callback_data=ToggleDistrict(district_id=district.id)
        )
    builder.adjust(2)
    builder.row(InlineKeyboardButton(text=_("Done"), callback_data=FinishDistricts().pack()))
    return builder.as_markup()


def order_districts(districts: Sequence[DistrictView]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for district in districts[:MAX_DISTRICT_BUTTONS]:
        builder.button(text=district.name, callback_data=OrderDistrict(district_id=district.id))
    builder.adjust(2)
    return builder.as_markup()


def one_tap_answer(text: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=text)]], resize_keyboard=True, one_time_keyboard=True
    )


def send_location() -> ReplyKeyboardMarkup:
    """One tap sends where the courier is now (a live location is shared from 📎 only)."""
    button = KeyboardButton(text=_("📍 Send my location"), request_location=True)
    return ReplyKeyboardMarkup(keyboard=[[button]], resize_keyboard=True, one_time_keyboard=True)


def skip_place() -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=_("Skip ⏭"), callback_data=SkipPlace().pack())
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def pager(listing: Listing, page: Page[Any]) -> list[InlineKeyboardButton]:
    """◀ and ▶ buttons for whichever neighbouring pages exist."""
    buttons = []
    if page.offset > 0:
        previous = ListPage(listing=listing, offset=max(page.offset - PAGE_SIZE, 0))
        buttons.append(InlineKeyboardButton(text="◀", callback_data=previous.pack()))
    if page.offset + PAGE_SIZE < page.total:
        following = ListPage(listing=listing, offset=page.offset + PAGE_SIZE)
        buttons.append(InlineKeyboardButton(text="▶", callback_data=following.pack()))
    return buttons


def orders_page(page: Page[Any]) -> InlineKeyboardMarkup | None:
    buttons = pager(Listing.ORDERS, page)
    return InlineKeyboardMarkup(inline_keyboard=[buttons]) if buttons else None


def couriers_page(page: Page[CourierView]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for courier in page.items:
        builder.button(
            text=f"#{courier.id} {courier.name}", callback_data=OpenCourier(courier_id=courier.id)
        )
    builder.adjust(2)
    if buttons := pager(Listing.COURIERS, page):
        builder.row(*buttons)
    return builder.as_markup()
