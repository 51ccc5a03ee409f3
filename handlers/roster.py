"""Dispatchers and their couriers: lists, cards, approvals, shifts and blocking."""

from collections.abc import Awaitable, Callable

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from db.uow import UnitOfWork
from handlers import keyboards, texts
from handlers.arguments import numbers
from handlers.callbacks import DecideRegistration, Listing, ListPage, OpenCourier
from handlers.context import HandlerConfig, current_locale
from services import couriers
from services.read_models import CourierCard, CourierStatus, RosterChange


async def list_couriers(message: Message, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    page = await couriers.list_couriers(uow, message.from_user.id, 0, keyboards.PAGE_SIZE)
    await message.answer(texts.couriers_page(page), reply_markup=keyboards.couriers_page(page))


async def turn_couriers_page(
    callback: CallbackQuery, callback_data: ListPage, uow: UnitOfWork
) -> None:
    page = await couriers.list_couriers(
        uow, callback.from_user.id, callback_data.offset, keyboards.PAGE_SIZE
    )
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            texts.couriers_page(page), reply_markup=keyboards.couriers_page(page)
        )


async def _send_card(message: Message, card: CourierCard, uow: UnitOfWork, viewer: int) -> None:
    """A waiting courier's card carries Approve and Reject for the staff, and counts as a copy
    of their request: deciding anywhere takes the buttons off it too. Recording the copy is
    the one write a card makes, in a transaction of its own after the reply."""
    courier = card.courier
    if courier.status is not CourierStatus.PENDING or courier.telegram_id == viewer:
        await message.answer(texts.courier_card(card))
        return
    sent = await message.answer(
        texts.courier_card(card), reply_markup=keyboards.decide_registration(courier.id)
    )
    await couriers.record_request_copy(
        uow, courier.id, sent.chat.id, sent.message_id, current_locale()
    )


async def show_courier(
    message: Message, command: CommandObject, uow: UnitOfWork, config: HandlerConfig
) -> None:
    assert message.from_user is not None
    (courier_id,) = numbers(command, 1, 1)
    card = await couriers.courier_card(uow, message.from_user.id, courier_id, config.zone)
    await _send_card(message, card, uow, message.from_user.id)


async def open_courier(
    callback: CallbackQuery, callback_data: OpenCourier, uow: UnitOfWork, config: HandlerConfig
) -> None:
    card = await couriers.courier_card(
        uow, callback.from_user.id, callback_data.courier_id, config.zone
    )
    await callback.answer()
    if isinstance(callback.message, Message):
        await _send_card(callback.message, card, uow, callback.from_user.id)


async def pending(message: Message, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    sent = await couriers.send_pending_requests(
        uow, message.from_user.id, message.chat.id, current_locale()
    )
    if not sent.sent:
        await message.answer(_("Nobody is waiting for approval."))
    elif sent.more:
        await message.answer(
            _(
                "Here come the {count} oldest requests. Decide them, then /pending again "
                "for the rest."
            ).format(count=sent.sent)
        )
    else:
        await message.answer(
            _("{count} waiting for approval: their requests follow.").format(count=sent.sent)
        )


async def decide(
    callback: CallbackQuery, callback_data: DecideRegistration, uow: UnitOfWork
) -> None:
    courier = await couriers.decide_registration(
        uow, callback.from_user.id, callback_data.courier_id, approve=callback_data.approve
    )
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(
            texts.registration_verdict(courier.id, courier.name, callback_data.approve)
        )


CourierChange = Callable[[UnitOfWork, int, int], Awaitable[RosterChange]]
# What each command does to the courier it names, and how the dispatcher hears it went.
CHANGES: dict[str, tuple[CourierChange, Callable[[], str]]] = {
    "offline_courier": (couriers.end_shift, lambda: _("Courier #{id} {name} is off shift.")),
    "block": (couriers.block_courier, lambda: _("Courier #{id} {name} is blocked.")),
    "unblock": (
        couriers.unblock_courier,
        lambda: _("Courier #{id} {name} is unblocked. They start a shift with /online."),
    ),
}


async def change_courier(message: Message, command: CommandObject, uow: UnitOfWork) -> None:
    """/offline_courier, /block or /unblock <courier number>."""
    assert message.from_user is not None
    change, done = CHANGES[command.command]
    (courier_id,) = numbers(command, 1, 1)
    changed = await change(uow, message.from_user.id, courier_id)
    lines = [done().format(id=changed.courier.id, name=texts.quote(changed.courier.name))]
    if changed.returned_order_id is not None:
        lines.append(
            _("Their order #{order} goes to the next free courier, or waits in the queue.").format(
                order=changed.returned_order_id
            )
        )
    await message.answer(" ".join(lines))


def build_router() -> Router:
    router = Router(name="roster")
    router.message.register(list_couriers, Command("couriers"))
    router.callback_query.register(
        turn_couriers_page, ListPage.filter(F.listing == Listing.COURIERS)
    )
    router.message.register(show_courier, Command("courier"))
    router.callback_query.register(open_courier, OpenCourier.filter())
    router.message.register(pending, Command("pending"))
    router.callback_query.register(decide, DecideRegistration.filter())
    router.message.register(change_courier, Command(*CHANGES))
    return router
