"""Courier commands: /register, /me, /online, /offline, /mydistricts, and the buttons of their
orders: Accept, Decline, Complete."""

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from db.uow import UnitOfWork
from handlers import keyboards, menu, texts
from handlers.callbacks import (
    AcceptOffer,
    CompleteOrder,
    DeclineOffer,
    FinishDistricts,
    ToggleDistrict,
)
from handlers.context import HandlerConfig, current_locale
from handlers.keyboards import send_location
from handlers.location import ask_for_location
from handlers.states import DistrictChange, Registration
from services import couriers, districts, offers, orders, staff
from services.errors import ErrorCode
from services.read_models import CourierStatus, CourierView, DistrictView
from services.validation import NAME_MAX, clean_name

DISTRICT_STATES = (Registration.districts, DistrictChange.districts)


async def register(message: Message, state: FSMContext, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    identity = await staff.identify(uow, message.from_user.id)
    if identity.courier is not None:
        await message.answer(_("You are already registered. See /me."))
        return
    await state.clear()
    await state.set_state(Registration.name)
    await message.answer(
        _("Let's get you started. What's your name? Tap below to use your Telegram name."),
        reply_markup=keyboards.one_tap_answer(message.from_user.full_name[:NAME_MAX]),
    )


async def registration_name(message: Message, state: FSMContext, uow: UnitOfWork) -> None:
    assert message.text is not None
    name = clean_name(message.text, ErrorCode.COURIER_NAME_LENGTH)
    choices = await districts.list_districts(uow)
    if not choices:
        await state.clear()
        await message.answer(
            _(
                "There are no districts yet, so there is nothing to serve. "
                "Ask a dispatcher to add some."
            ),
            reply_markup=ReplyKeyboardRemove(),
        )
        return
    await state.update_data(name=name, chosen=[], choices=_remember(choices))
    await state.set_state(Registration.districts)
    await message.answer(
        _("Thanks, {name}!").format(name=texts.quote(name)), reply_markup=ReplyKeyboardRemove()
    )
    await message.answer(
        _("Which districts do you serve? Tap to choose, then tap Done."),
        reply_markup=keyboards.toggle_districts(choices, []),
    )


async def registration_name_not_text(message: Message) -> None:
    await message.answer(_("Please send your name as text, or /cancel."))


async def my_districts(message: Message, state: FSMContext, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    choices, chosen = await couriers.district_form(uow, message.from_user.id)
    await state.clear()
    await state.set_state(DistrictChange.districts)
    await state.update_data(chosen=chosen, choices=_remember(choices))
    await message.answer(
        _("Your districts are marked ✅. Tap to change, then tap Done."),
        reply_markup=keyboards.toggle_districts(choices, chosen),
    )


def _remember(choices: list[DistrictView]) -> list[list[int | str]]:
    """The districts shown, kept with the dialog so that a tap needs no database."""
    return [[d.id, d.name] for d in choices]


async def toggle_district(
    callback: CallbackQuery, callback_data: ToggleDistrict, state: FSMContext
) -> None:
    data = await state.get_data()
    chosen = set(data["chosen"]) ^ {callback_data.district_id}
    await state.update_data(chosen=sorted(chosen))
    await callback.answer()
    choices = [DistrictView(id=int(i), name=str(name)) for i, name in data["choices"]]
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(
            reply_markup=keyboards.toggle_districts(choices, chosen)
        )


async def finish_registration(
    callback: CallbackQuery,
    state: FSMContext,
    uow: UnitOfWork,
    config: HandlerConfig,
    bot: Bot,
    i18n: I18n,
) -> None:
    data = await state.get_data()
    courier = await couriers.register_courier(
        uow,
        callback.from_user.id,
        data["name"],
        data["chosen"],
        approval_required=config.courier_approval,
        invite_token=data.get("invite"),
        locale=current_locale(),
    )
    await _finish(callback, state, _registered(courier))
    await menu.set_personal_menu(bot, i18n, await staff.identify(uow, callback.from_user.id))


async def finish_district_change(
    callback: CallbackQuery, state: FSMContext, uow: UnitOfWork
) -> None:
    chosen = (await state.get_data())["chosen"]
    courier = await couriers.set_districts(uow, callback.from_user.id, chosen)
    districts_text = texts.names(courier.districts)
    await _finish(
        callback, state, _("Your districts: {districts}.").format(districts=districts_text)
    )


async def _finish(callback: CallbackQuery, state: FSMContext, text: str) -> None:
    """Leave the dialog and turn the keyboard message into the outcome."""
    await state.clear()
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(text)


def _registered(courier: CourierView) -> str:
    districts_text = texts.names(courier.districts)
    if courier.status is CourierStatus.ACTIVE:
        return _(
            "Welcome aboard, courier #{id}! You serve {districts} and you are online: "
            "orders will come here. /offline ends your shift."
        ).format(id=courier.id, districts=districts_text)
    return _(
        "Thanks! Your request (courier #{id}, {districts}) went to the dispatchers. "
        "I'll tell you when it is approved."
    ).format(id=courier.id, districts=districts_text)


async def me(message: Message, uow: UnitOfWork, config: HandlerConfig) -> None:
    assert message.from_user is not None
    card = await couriers.my_card(uow, message.from_user.id, config.zone)
    await message.answer(texts.courier_card(card))


async def shift(
    message: Message, command: CommandObject, uow: UnitOfWork, config: HandlerConfig
) -> None:
    """/online or /offline, also as a photo's caption."""
    assert message.from_user is not None
    online = command.command == "online"
    card = await couriers.set_online(uow, message.from_user.id, online, config.zone)
    if not online:
        text = _("Your shift is over. No new orders until /online.")
    elif card.active_order:
        text = _("You are online. Your current order is #{id}.").format(id=card.active_order.id)
    else:
        text = _("You are online. Orders of your districts will come here.")
    if online and config.nearest:
        await message.answer(f"{text}\n\n{ask_for_location()}", reply_markup=send_location())
    else:
        await message.answer(text, reply_markup=ReplyKeyboardRemove())


async def complete(callback: CallbackQuery, callback_data: CompleteOrder, uow: UnitOfWork) -> None:
    result = await orders.complete_order(uow, callback.from_user.id, callback_data.order_id)
    if result.already_completed:
        await callback.answer(_("Order #{id} is already completed.").format(id=result.order.id))
        return
    await callback.answer(_("Delivered! Thank you."))
    order = result.order
    assert order.delivery_time is not None
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            _("✅ Order #{id} delivered in {time}.\n{district} · {description}").format(
                id=order.id,
                time=texts.duration(order.delivery_time),
                district=texts.quote(order.district),
                description=texts.preview(order.description),
            )
        )


async def accept(callback: CallbackQuery, callback_data: AcceptOffer, uow: UnitOfWork) -> None:
    """The offer's message becomes the order's, with Complete, through the outbox."""
    order = await offers.accept_offer(uow, callback.from_user.id, callback_data.order_id)
    await callback.answer(_("Order #{id} is yours. Thank you!").format(id=order.id))


async def decline(callback: CallbackQuery, callback_data: DeclineOffer, uow: UnitOfWork) -> None:
    order_id = await offers.decline_offer(uow, callback.from_user.id, callback_data.order_id)
    await callback.answer(_("Declined: order #{id} goes to another courier.").format(id=order_id))


def build_router() -> Router:
    router = Router(name="courier")
    router.message.filter(F.chat.type == "private")
    router.message.register(register, Command("register"))
    router.message.register(registration_name, Registration.name, F.text, ~F.text.startswith("/"))
    router.message.register(registration_name_not_text, Registration.name, ~F.text.startswith("/"))
    router.message.register(my_districts, Command("mydistricts"))
    router.callback_query.register(
        toggle_district, ToggleDistrict.filter(), StateFilter(*DISTRICT_STATES)
    )
    router.callback_query.register(
        finish_registration, FinishDistricts.filter(), Registration.districts
    )
    router.callback_query.register(
        finish_district_change, FinishDistricts.filter(), DistrictChange.districts
    )
    router.message.register(me, Command("me"))
    router.message.register(shift, Command("online", "offline"))
    router.callback_query.register(complete, CompleteOrder.filter())
    router.callback_query.register(accept, AcceptOffer.filter())
    router.callback_query.register(decline, DeclineOffer.filter())
    return router
