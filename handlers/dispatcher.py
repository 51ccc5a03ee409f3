"""Dispatcher commands about orders, districts and the day (admins too), in a private chat or
a dispatch group."""

from uuid import uuid4

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, ForceReply, Message
from aiogram.utils.deep_linking import create_start_link
from aiogram.utils.i18n import gettext as _

from db.uow import UnitOfWork
from handlers import keyboards, texts
from handlers.arguments import numbers, text_argument
from handlers.callbacks import Listing, ListPage, OrderDistrict, SkipPlace
from handlers.context import HandlerConfig, current_locale
from handlers.location import point_of
from handlers.states import NewOrder
from services import districts, invites, orders, statistics
from services.errors import Conflict, ErrorCode, UnknownDistrict
from services.orders import Places
from services.read_models import Point
from services.validation import DESCRIPTION_MAX, clean_description


async def _ask_district(message: Message, state: FSMContext, uow: UnitOfWork, intro: str) -> None:
    assert message.from_user is not None
    choices = await orders.order_form(uow, message.from_user.id)
    if not choices:
        await message.answer(texts.no_districts())
        return
    await state.set_state(NewOrder.district)
    # The form posts once, whatever fails after its order commits (dialog storage away).
    await state.set_data({"form": uuid4().hex})
    await message.answer(intro, reply_markup=keyboards.order_districts(choices))


async def post_order(
    message: Message, command: CommandObject, state: FSMContext, uow: UnitOfWork
) -> None:
    """The chat hears whom the order went to from the outbox (OrderPosted): a dispatcher who
    pastes a hundred orders never waits for the chat's flood limit between them."""
    assert message.from_user is not None
    if not command.args or not command.args.strip():
        await _ask_district(message, state, uow, _("Which district is the order for?"))
        return
    try:
        await orders.post_order_text(
            uow,
            message.from_user.id,
            message.chat.id,
            command.args,
            current_locale(),
            source=f"message:{message.chat.id}:{message.message_id}",
        )
    except UnknownDistrict:
        await _ask_district(message, state, uow, _("I don't know that district. Which one is it?"))


async def order_district(
    callback: CallbackQuery, callback_data: OrderDistrict, state: FSMContext
) -> None:
    await state.update_data(district_id=callback_data.district_id)
    await state.set_state(NewOrder.description)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(
            _("What should be delivered? Send the description (up to {max} characters).").format(
                max=DESCRIPTION_MAX
            ),
            reply_markup=ForceReply(selective=True),
        )


async def stale_order_district(callback: CallbackQuery) -> None:
    await callback.answer(_("This list is out of date. Start again with /order."), show_alert=True)


async def stale_skip(callback: CallbackQuery) -> None:
    await callback.answer(_("This form is over. Start again with /order."), show_alert=True)


async def order_description(message: Message, state: FSMContext) -> None:
    assert message.text is not None
    clean_description(message.text)  # a description it cannot take is refused now, not last
    await state.update_data(description=message.text)
    await state.set_state(NewOrder.pickup)
    await message.answer(
        _("Where is it picked up? Send a location or a venue (📎 → Location), or tap Skip."),
        reply_markup=keyboards.skip_place(),
    )


async def order_pickup(message: Message, state: FSMContext) -> None:
    place = point_of(message)
    assert place is not None  # the router's filter: a location or a venue
    await state.update_data(pickup=[place.lat, place.lon, place.address])
    await _ask_dropoff(message, state)


async def skip_pickup(callback: CallbackQuery, state: FSMContext) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        await _ask_dropoff(callback.message, state)


async def _ask_dropoff(message: Message, state: FSMContext) -> None:
    await state.set_state(NewOrder.dropoff)
    await message.answer(
        _("Where is it delivered? Send a location or a venue, or tap Skip."),
        reply_markup=keyboards.skip_place(),
    )


async def order_dropoff(message: Message, state: FSMContext, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    place = point_of(message)
    assert place is not None
    await _post_form(uow, state, message.from_user.id, message.chat.id, place)


async def skip_dropoff(callback: CallbackQuery, state: FSMContext, uow: UnitOfWork) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        await _post_form(uow, state, callback.from_user.id, callback.message.chat.id, None)


async def _post_form(
    uow: UnitOfWork, state: FSMContext, user_id: int, chat_id: int, dropoff: Point | None
) -> None:
    """Posts once per form: a second answer after the order committed is refused."""
    form = await state.get_data()
    pickup = Point(*form["pickup"]) if form.get("pickup") else None
    try:
        await orders.post_order(
            uow,
            user_id,
            chat_id,
            form["district_id"],
            form["description"],
            current_locale(),
            source=f"form:{form['form']}" if "form" in form else None,
            places=Places(pickup, dropoff),
        )
    except Conflict as refused:
        if refused.code is ErrorCode.ALREADY_POSTED:
            await state.clear()
        raise
    await state.clear()


async def place_not_sent(message: Message) -> None:
    await message.answer(_("Please send a location or a venue (📎 → Location), or tap Skip."))


async def order_description_not_text(message: Message) -> None:
    await message.answer(_("Please send the description as text, or /cancel."))


async def list_orders(message: Message, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    page = await orders.active_orders(uow, message.from_user.id, 0, keyboards.PAGE_SIZE)
    await message.answer(texts.orders_page(page), reply_markup=keyboards.orders_page(page))


async def turn_orders_page(
    callback: CallbackQuery, callback_data: ListPage, uow: UnitOfWork
) -> None:
    page = await orders.active_orders(
        uow, callback.from_user.id, callback_data.offset, keyboards.PAGE_SIZE
    )
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            texts.orders_page(page), reply_markup=keyboards.orders_page(page)
        )


async def track(
    message: Message, command: CommandObject, uow: UnitOfWork, config: HandlerConfig
) -> None:
    assert message.from_user is not None
    (order_id,) = numbers(command, 1, 1)
    order = await orders.order_status(uow, message.from_user.id, order_id)
    await message.answer(texts.order_card(order, config.zone))


async def cancel_order(message: Message, command: CommandObject, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    (order_id,) = numbers(command, 1, 1)
    order = await orders.cancel_order(uow, message.from_user.id, order_id)
    await message.answer(_("Order #{id} is cancelled.").format(id=order.id))


async def reassign(message: Message, command: CommandObject, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    order_id, *target = numbers(command, 1, 2)
    order = await orders.reassign_order(
        uow, message.from_user.id, order_id, target[0] if target else None
    )
    await message.answer(texts.posted(order))


async def add_district(message: Message, command: CommandObject, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    district = await districts.add_district(uow, message.from_user.id, text_argument(command))
    await message.answer(_("District {name} added.").format(name=texts.quote(district.name)))


async def list_districts(message: Message, uow: UnitOfWork) -> None:
    for part in texts.districts(await districts.list_districts(uow)):
        await message.answer(part)


async def stats(message: Message, uow: UnitOfWork, config: HandlerConfig) -> None:
    assert message.from_user is not None
    today = await statistics.today(uow, message.from_user.id, config.zone)
    for part in texts.stats(today):
        await message.answer(part)


async def invite(message: Message, uow: UnitOfWork, bot: Bot) -> None:
    assert message.from_user is not None
    private = message.chat.type == "private"
    created = await invites.create_invite(uow, message.from_user.id, private_chat=private)
    link = await create_start_link(bot, created.token)
    await message.answer(
        _("A one-time link for one new courier, valid for {days} days:\n{link}").format(
            days=created.valid_days, link=link
        )
    )


def build_router() -> Router:
    router = Router(name="dispatcher")
    router.message.register(post_order, Command("order"))
    router.callback_query.register(order_district, NewOrder.district, OrderDistrict.filter())
    router.callback_query.register(stale_order_district, OrderDistrict.filter())
    router.message.register(
        order_description, NewOrder.description, F.text, ~F.text.startswith("/")
    )
    router.message.register(
        order_description_not_text, NewOrder.description, ~F.text.startswith("/")
    )
    router.message.register(order_pickup, NewOrder.pickup, F.location)
    router.callback_query.register(skip_pickup, NewOrder.pickup, SkipPlace.filter())
    router.message.register(order_dropoff, NewOrder.dropoff, F.location)
    router.callback_query.register(skip_dropoff, NewOrder.dropoff, SkipPlace.filter())
    router.message.register(
        place_not_sent, StateFilter(NewOrder.pickup, NewOrder.dropoff), ~F.text.startswith("/")
    )
    router.callback_query.register(stale_skip, SkipPlace.filter())
    router.message.register(list_orders, Command("orders"))
    router.callback_query.register(turn_orders_page, ListPage.filter(F.listing == Listing.ORDERS))
    router.message.register(track, Command("track"))
    router.message.register(cancel_order, Command("cancel_order"))
    router.message.register(reassign, Command("reassign"))
    router.message.register(add_district, Command("add_district"))
    router.message.register(list_districts, Command("districts"))
    router.message.register(stats, Command("stats"))
    router.message.register(invite, Command("invite"))
    return router
