"""/start, /help and /cancel: for everyone."""

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardRemove
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from db.uow import UnitOfWork
from handlers import menu
from handlers.context import current_locale
from handlers.keyboards import one_tap_answer
from handlers.states import Registration
from handlers.texts import names, quote
from services import couriers, staff
from services.read_models import CourierStatus, Identity
from services.validation import NAME_MAX


def greeting(identity: Identity, first_name: str) -> str:
    name = quote(first_name)
    if identity.is_admin:
        role = _("You are an admin.")
    elif identity.is_dispatcher:
        role = _("You are a dispatcher.")
    elif identity.courier and identity.courier.status is CourierStatus.ACTIVE:
        role = _("You are a courier.")
    elif identity.courier:
        role = _("Your courier registration is waiting for approval.")
    else:
        role = _("To deliver orders with us, join as a courier: /register")
    your_id = _("Your Telegram id: <code>{id}</code>").format(id=identity.telegram_id)
    return "\n".join([_("Hello, {name}!").format(name=name), role, your_id, _("Commands: /help")])


def help_text(identity: Identity) -> str:
    lines = [f"/{name} — {text}" for name, text in menu.commands_for(identity).items()]
    return "\n".join([_("<b>What you can do</b>"), *(quote(line) for line in lines)])


async def start_with_invite(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    uow: UnitOfWork,
    bot: Bot,
    i18n: I18n,
) -> None:
    """`/start <token>` from an invite link: the registration dialog, pre-approved; or, from
    the link of a courier created over HTTP, this account becomes theirs."""
    assert message.from_user is not None
    token = (command.args or "").strip()
    linked = await couriers.accept_invite(uow, token, message.from_user.id, current_locale())
    await state.clear()
    if linked is not None:
        await message.answer(
            _(
                "Welcome, {name}! You are courier #{id}, serving {districts}. "
                "Your orders will come here too. /me shows your card."
            ).format(name=quote(linked.name), id=linked.id, districts=names(linked.districts))
        )
        await menu.set_personal_menu(bot, i18n, await staff.identify(uow, message.from_user.id))
        return
    await state.set_state(Registration.name)
    await state.update_data(invite=token)
    await message.answer(
        _("You're invited to join as a courier. What's your name?"),
        reply_markup=one_tap_answer(message.from_user.full_name[:NAME_MAX]),
    )


async def start(message: Message, uow: UnitOfWork, bot: Bot, i18n: I18n) -> None:
    assert message.from_user is not None
    identity = await staff.identify(uow, message.from_user.id, current_locale())
    await message.answer(greeting(identity, message.from_user.first_name))
    if message.chat.type == "private":
        await menu.set_personal_menu(bot, i18n, identity)


async def show_help(message: Message, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    identity = await staff.identify(uow, message.from_user.id)
    await message.answer(help_text(identity))


async def cancel_dialog(message: Message, state: FSMContext) -> None:
    if await state.get_state() is None:
        await message.answer(_("There is nothing to cancel."), reply_markup=ReplyKeyboardRemove())
        return
    await state.clear()
    await message.answer(_("Cancelled."), reply_markup=ReplyKeyboardRemove())


def build_router() -> Router:
    router = Router(name="common")
    router.message.register(
        start_with_invite, CommandStart(deep_link=True), F.chat.type == "private"
    )
    router.message.register(start, CommandStart())
    router.message.register(show_help, Command("help"))
    router.message.register(cancel_dialog, Command("cancel"))
    return router
